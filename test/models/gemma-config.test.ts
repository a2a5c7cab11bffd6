import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Backend, HostTensor, Tensor } from '../../src/backend/backend.ts';
import { loadModelConfig, parseModelConfig, readJson } from '../../src/loader/hf-config.ts';
import { dummyWeights, loadDummyModel } from '../../src/models/dummy.ts';
import { gemmaSettings } from '../../src/models/gemma-config.ts';
import { pickArchitecture } from '../../src/models/registry.ts';
import { defaultInvFreq } from '../../src/models/rope.ts';
import { UserError } from '../../src/util/errors.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { maxAbsDiff, PagedSession } from '../helpers/paged-session.ts';
import { RandomDummyCpu } from '../helpers/random-dummy-cpu.ts';

/** Test configs shaped like the published config.json files (transformers 4.x style). */
const CONFIGS = join(projectRoot, 'test', 'fixtures', 'configs');
const SLIDING = 'sliding_attention';
const FULL = 'full_attention';

const base = { architectures: ['Gemma2ForCausalLM'], model_type: 'gemma2', num_hidden_layers: 4, head_dim: 16 };
const settings = (raw: Record<string, unknown>, generation: 1 | 2 | 3 = 2) =>
  gemmaSettings(parseModelConfig(raw), generation);

describe('Gemma config resolution', () => {
  test('layer pattern: layer_types, else sliding_window_pattern, else even layers slide (Gemma 2), Gemma 1 none', () => {
    assert.deepEqual(settings({ ...base, layer_types: [FULL, SLIDING, FULL, FULL] }).layerTypes, [
      FULL,
      SLIDING,
      FULL,
      FULL,
    ]);
    assert.deepEqual(settings({ ...base, sliding_window_pattern: 3 }, 3).layerTypes, [SLIDING, SLIDING, FULL, SLIDING]);
    assert.deepEqual(settings(base).layerTypes, [SLIDING, FULL, SLIDING, FULL]);
    assert.deepEqual(settings({ ...base, model_type: 'gemma' }, 1).layerTypes, [FULL, FULL, FULL, FULL]);
    assert.throws(
      () => settings({ ...base, layer_types: [FULL, 'chunked_attention', FULL, FULL] }),
      (e: unknown) => e instanceof UserError && /"layer_types" must list/.test(e.message) && !e.message.includes('\n'),
    );
  });

  test('attention scale from query_pre_attn_scalar (else head_dim); soft-caps; Gemma 2 defaults them on', () => {
    const s = settings({ ...base, query_pre_attn_scalar: 144, attn_logit_softcapping: null });
    assert.equal(s.queryPreAttnScalar, 144);
    assert.equal(s.attnSoftcap, 0, 'an explicit null turns it off');
    assert.equal(s.finalSoftcap, 30, "absent: transformers' Gemma2Config default");
    assert.equal(settings(base).attnSoftcap, 50);
    assert.equal(
      settings({ ...base, model_type: 'gemma', architectures: ['GemmaForCausalLM'] }, 1).queryPreAttnScalar,
      16,
    );
  });

  test('activation: gelu_pytorch_tanh; Gemma 1 "gelu" is the tanh form; an exact GELU is refused in one line', () => {
    assert.equal(settings({ ...base, hidden_activation: 'gelu_pytorch_tanh' }).activation, 'gelu_tanh');
    assert.equal(settings({ ...base, model_type: 'gemma', hidden_act: 'gelu' }, 1).activation, 'gelu_tanh');
    assert.throws(
      () => settings({ ...base, hidden_activation: 'gelu' }),
      (e: unknown) =>
        e instanceof UserError &&
        e.message ===
          'config.json: hidden_activation "gelu" is not supported for Gemma2ForCausalLM (supported: gelu_pytorch_tanh, silu)',
    );
  });

  test('Gemma 3 RoPE: transformers 5 rope_parameters by layer type, and the 4.x global and local bases', () => {
    const v5 = settings(
      {
        ...base,
        model_type: 'gemma3_text',
        rope_parameters: {
          full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1e6 },
          sliding_attention: { rope_type: 'default', rope_theta: 1e4 },
        },
      },
      3,
    );
    assert.deepEqual([...v5.rope[FULL].invFreq], [...defaultInvFreq(1e6, 16).map((f) => f / 8)]);
    assert.deepEqual([...v5.rope[SLIDING].invFreq], [...defaultInvFreq(1e4, 16)]);
    const gemma3_1b = gemmaSettings(loadModelConfig(join(CONFIGS, 'gemma-3-1b-it')), 3);
    assert.deepEqual([...gemma3_1b.rope[FULL].invFreq], [...defaultInvFreq(1e6, 256)]);
    assert.deepEqual([...gemma3_1b.rope[SLIDING].invFreq], [...defaultInvFreq(1e4, 256)]);
    assert.deepEqual(
      gemma3_1b.layerTypes.map((t, i) => (t === FULL ? i : -1)).filter((i) => i >= 0),
      [5, 11, 17, 23],
    );
    // Gemma 2 has one RoPE for both layer types.
    const g2 = settings({ ...base, rope_theta: 5000 });
    assert.equal(g2.rope[FULL], g2.rope[SLIDING]);
    assert.deepEqual([...g2.rope[FULL].invFreq], [...defaultInvFreq(5000, 16)]);
  });

  test('an unsupported architecture lists the Gemma ones among those supported, in one line', () => {
    const cfg = parseModelConfig({ ...base, architectures: ['PaliGemmaForConditionalGeneration'] });
    assert.throws(
      () => pickArchitecture(cfg, 'x/config.json'),
      (e: unknown) =>
        e instanceof UserError &&
        /^x\/config\.json: architecture "PaliGemmaForConditionalGeneration" is not supported \(supported: .*GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3ForConditionalGeneration.*\)$/.test(
          e.message,
        ),
    );
  });

  test("Gemma3ForConditionalGeneration's 4.x config: text_config lifted, Gemma3TextConfig's defaults under it", () => {
    const cfg = loadModelConfig(join(CONFIGS, 'gemma-3-4b-it'));
    assert.equal(cfg.architecture, 'Gemma3ForConditionalGeneration');
    assert.deepEqual(
      [cfg.hiddenSize, cfg.numLayers, cfg.numHeads, cfg.numKvHeads, cfg.headDim, cfg.vocabSize, cfg.slidingWindow],
      [2560, 34, 8, 4, 256, 262208, 1024],
    );
    assert.deepEqual(cfg.eosTokenIds, [1, 106]);
    assert.equal(cfg.dtype, 'bfloat16');
    const s = gemmaSettings(cfg, 3);
    assert.equal(s.queryPreAttnScalar, 256);
    assert.deepEqual([...s.rope[FULL].invFreq], [...defaultInvFreq(1e6, 256).map((f) => f / 8)], 'global: linear 8');
    assert.deepEqual([...s.rope[SLIDING].invFreq], [...defaultInvFreq(1e4, 256)], 'local: unscaled');
  });
});

/** A backend that records the weights a model asks for and allocates nothing. */
function recordingBackend(loaded: HostTensor[]): Backend {
  return new Proxy({} as Backend, {
    get: (_, key) => {
      if (key === 'loadWeight')
        return (w: HostTensor): Tensor => {
          loaded.push(w);
          return { shape: w.shape, dtype: 'bf16' };
        };
      if (key === 'name') return 'cpu';
      // A stand-in for one rank: the model's weights whole.
      if (key === 'tensorParallelSize') return 1;
      return () => assert.fail(`${String(key)} called while building the model`);
    },
  });
}

const SHAPES = [
  { name: 'gemma-3-1b-it', layers: 26, extra: ['self_attn.q_norm.weight', 'pre_feedforward_layernorm.weight'] },
  { name: 'gemma-2-9b', layers: 42, extra: ['post_feedforward_layernorm.weight'] },
  { name: 'gemma-3-4b-it', layers: 34, extra: ['self_attn.k_norm.weight'] },
  { name: 'gemma-2b', layers: 18, extra: ['post_attention_layernorm.weight'] },
];

for (const { name, layers, extra } of SHAPES) {
  describe(`a ${name}-shaped config (4.x style)`, () => {
    const dir = join(CONFIGS, name);

    test('loads with --load-format dummy in its full shapes', () => {
      const loaded: HostTensor[] = [];
      const model = loadDummyModel(dir, recordingBackend(loaded));
      const { hiddenSize: H, vocabSize } = model.config;
      assert.equal(model.kvShape.numLayers, layers);
      const names = new Set(loaded.map((w) => w.name));
      const root = name === 'gemma-3-4b-it' ? 'model.language_model.' : 'model.';
      for (const n of extra) assert.ok(names.has(`${root}layers.${layers - 1}.${n}`), `${n} loaded`);
      assert.deepEqual(loaded.find((w) => w.name === `${root}embed_tokens.weight`)?.shape, [vocabSize, H]);
      assert.ok(!names.has('lm_head.weight'), 'tied embeddings');
    });

    test('runs a forward on the CPU backend shrunken (random dummy weights): chunked and paged agree', () => {
      const raw = readJson(join(dir, 'config.json'));
      const small = {
        hidden_size: 64,
        intermediate_size: 96,
        num_hidden_layers: 7,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 16,
        vocab_size: 300,
        sliding_window: 5,
      };
      const shrunk = raw.text_config
        ? { ...raw, text_config: { ...(raw.text_config as object), ...small } }
        : { ...raw, ...small };
      const cfg = parseModelConfig(shrunk);
      const backend = new RandomDummyCpu(7, 0.2);
      const model = pickArchitecture(cfg, name).build(cfg, dummyWeights(name, backend), backend, {});
      const ids = Array.from({ length: 13 }, (_, i) => (i * 37) % 300);
      const all = new PagedSession(model, 4).step([{ seq: 0, tokens: ids, logits: 'all' }]);
      assert.ok(all.every((row) => row.length === 300 && row.every(Number.isFinite)));
      const session = new PagedSession(model, 4);
      session.step([{ seq: 0, tokens: ids.slice(0, 6), logits: 'none' }]);
      const chunk = session.step([{ seq: 0, tokens: ids.slice(6, 12) }])[0]!;
      assert.ok(maxAbsDiff(chunk, all[11]!) < 1e-4, 'chunked prefill');
      const decode = session.step([{ seq: 0, tokens: [ids[12]!] }])[0]!;
      assert.ok(maxAbsDiff(decode, all[12]!) < 1e-4, 'decode step');
      if (cfg.raw.final_logit_softcapping) assert.ok(all.every((row) => row.every((v) => Math.abs(v) < 30)));
    });
  });
}
