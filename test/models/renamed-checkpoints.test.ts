import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { exaoneName } from '../../src/models/exaone.ts';
import { loadModel } from '../../src/models/load.ts';
import { parseQuantization } from '../../src/primitives/quant/mix.ts';
import { FolderVariants, readTensors, type Tensors } from '../helpers/bert-variants.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { argmax, maxAbsDiff, PagedSession } from '../helpers/paged-session.ts';
import { writeTinyMoeFolder } from '../helpers/random-folders.ts';

/**
 * Families whose checkpoints store a committed fixture's forward under other names or layouts: the fixture rewritten
 * that way must reproduce transformers' goldens for it. Granite 4.0's transformer-only checkpoints
 * (GraniteMoeHybridForCausalLM, every layer attention) are Granite 3's forward with each MLP stored as `shared_mlp`
 * (gate and up fused), and with experts a GraniteMoeShared folder's; EXAONE 3's (ExaoneForCausalLM) are Llama's under
 * GPT-2-style names; Mistral 3's (Mistral3ForConditionalGeneration) keep Mistral's language model under
 * `language_model.` or `model.language_model.`, its config under `text_config`, and a vision tower pagoda leaves unread.
 */
const granite = modelFixture('tiny-granite');
const llama = modelFixture('tiny-llama');
const mistral = modelFixture('tiny-mistral');
const config = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
const hybridKeys = (layers: number) => ({
  architectures: ['GraniteMoeHybridForCausalLM'],
  model_type: 'granitemoehybrid',
  layer_types: Array(layers).fill('attention'),
  position_embedding_type: 'rope',
});

interface GoldenPrompt {
  input_ids: number[];
  last_logits: number[];
  greedy_ids: number[];
}

/** The fixture's golden prompts: transformers' last logits and greedy ids. */
const goldenOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')).prompts as GoldenPrompt[];

/** The folder at `dir` reproduces `fixture`'s goldens: last logits within 1e-4, greedy ids identical. */
function assertGolden(dir: string, fixture: string): void {
  const prompts = goldenOf(fixture);
  run(dir, prompts).forEach(({ last, ids }, i) => {
    const diff = maxAbsDiff(last, prompts[i]!.last_logits);
    assert.ok(diff < 1e-4, `prompt ${i}: last logits differ by ${diff}`);
    assert.deepEqual(ids, prompts[i]!.greedy_ids, `prompt ${i}: greedy ids`);
  });
}

/** Each prompt's last logits and greedy ids, one token per step through the paged cache. */
function run(dir: string, prompts: readonly GoldenPrompt[]) {
  const model = loadModel(dir, new CpuBackend());
  return prompts.map((p) => {
    const session = new PagedSession(model, 4);
    let logits = session.step([{ seq: 0, tokens: p.input_ids }])[0]!;
    const last = logits;
    const ids: number[] = [];
    for (let i = 0; i < p.greedy_ids.length; i++) {
      if (i > 0) logits = session.step([{ seq: 0, tokens: [ids.at(-1)!] }])[0]!;
      ids.push(argmax(logits));
    }
    return { last, ids };
  });
}

describe('Granite 4.0 (GraniteMoeHybridForCausalLM, attention only)', { skip: granite.skip }, () => {
  const variants = new FolderVariants(granite.path);
  const tmp = mkdtempSync(join(tmpdir(), 'pagoda-granite4-'));
  after(() => {
    variants.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });
  /** tiny-granite with each MLP as shared_mlp (input_linear: gate rows, then up rows; output_linear: down). */
  function denseHybrid(extra: Record<string, unknown> = {}): string {
    const base = config(granite.path);
    const t = readTensors(granite.path);
    const out: Tensors = new Map();
    for (const [name, v] of t) {
      const m = /^(model\.layers\.\d+)\.mlp\.(gate|up|down)_proj\.weight$/.exec(name);
      if (!m) out.set(name, v);
      else if (m[2] === 'down') out.set(`${m[1]}.shared_mlp.output_linear.weight`, v);
      else if (m[2] === 'gate') {
        const up = t.get(`${m[1]}.mlp.up_proj.weight`)!;
        const data = new Float32Array(v.data.length + up.data.length);
        data.set(v.data);
        data.set(up.data, v.data.length);
        out.set(`${m[1]}.shared_mlp.input_linear.weight`, { shape: [2 * v.shape[0]!, v.shape[1]!], data });
      }
    }
    const cfg = {
      ...base,
      ...hybridKeys(base.num_hidden_layers),
      num_local_experts: 0,
      shared_intermediate_size: base.intermediate_size,
      ...extra,
    };
    return variants.make(cfg, out);
  }

  test("dense: transformers' tiny-granite goldens, last logits within 1e-4 and greedy ids identical", () => {
    assertGolden(denseHybrid(), granite.path);
  });

  test('with experts: a GraniteMoeShared folder under the Granite 4.0 config gives its logits, exactly', () => {
    const shared = writeTinyMoeFolder(
      join(variants.make(config(granite.path), new Map()), 'moe'),
      'granitemoeshared',
      granite.path,
    );
    const cfg = config(shared);
    const hybrid = variants.make({ ...cfg, ...hybridKeys(cfg.num_hidden_layers) }, readTensors(shared));
    const prompts = goldenOf(granite.path);
    const [a, b] = [run(shared, prompts), run(hybrid, prompts)];
    a.forEach((r, i) => {
      assert.deepEqual([...b[i]!.last], [...r.last], `prompt ${i}: last logits`);
      assert.deepEqual(b[i]!.ids, r.ids, `prompt ${i}: greedy ids`);
    });
  });

  test('Mamba-2 layers, NoPE and a missing shared width are each refused in one line', () => {
    const base = config(granite.path);
    const layers = Array(base.num_hidden_layers).fill('attention');
    layers[0] = 'mamba';
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ layer_types: layers }, /layer_types has 1 Mamba-2 layers, which are not supported/],
      [{ position_embedding_type: 'nope' }, /position_embedding_type "nope" is not supported .*expected "rope"/],
      [{ shared_intermediate_size: undefined }, /"shared_intermediate_size" must be a positive integer, got undefined/],
    ];
    for (const [extra, pattern] of cases) {
      assert.throws(() => loadModel(denseHybrid(extra), new CpuBackend()), pattern);
    }
  });
});

describe('EXAONE 3 (ExaoneForCausalLM: the Llama stack under GPT-2-style names)', { skip: llama.skip }, () => {
  const variants = new FolderVariants(llama.path);
  after(() => variants.cleanup());

  test("tiny-llama stored as EXAONE 3: transformers' tiny-llama goldens, last logits within 1e-4, greedy ids identical", () => {
    const tensors: Tensors = new Map();
    for (const [name, v] of readTensors(llama.path)) tensors.set(exaoneName(name), v);
    // As EXAONE-3.5-2.4B-Instruct's safetensors name them.
    for (const name of [
      'transformer.wte.weight',
      'transformer.h.0.attn.attention.out_proj.weight',
      'transformer.h.1.mlp.c_fc_1.weight',
      'transformer.ln_f.weight',
    ]) {
      assert.ok(tensors.has(name), name);
    }
    assert.ok(![...tensors.keys()].some((n) => n.startsWith('model.')), 'every Llama name rewritten');
    const { num_hidden_layers, rms_norm_eps, hidden_act, ...rest } = config(llama.path);
    const cfg = {
      ...rest,
      architectures: ['ExaoneForCausalLM'],
      model_type: 'exaone',
      num_layers: num_hidden_layers,
      layer_norm_epsilon: rms_norm_eps,
      activation_function: hidden_act,
    };
    const dir = variants.make(cfg, tensors);
    assertGolden(dir, llama.path);
    // --quantization reads each matrix's role from the Llama name it is loaded under: the same blocks as tiny-llama's.
    const quantized = (path: string) => {
      const model = loadModel(path, new CpuBackend(), { quantization: parseQuantization('q8_0', 'test') });
      return [...new PagedSession(model).step([{ seq: 0, tokens: [1, 5, 9, 13] }])[0]!];
    };
    assert.deepEqual(quantized(dir), quantized(llama.path));
  });
});

describe('Mistral 3 (Mistral3ForConditionalGeneration: its language model, for text)', { skip: mistral.skip }, () => {
  const variants = new FolderVariants(mistral.path);
  after(() => variants.cleanup());
  const { architectures: _, ...text } = config(mistral.path);
  const outer = {
    architectures: ['Mistral3ForConditionalGeneration'],
    model_type: 'mistral3',
    text_config: text,
    vision_config: { model_type: 'pixtral', hidden_size: 32, num_hidden_layers: 1 },
    image_token_index: 10,
  };
  // transformers 4's names, and transformers 5's.
  const layouts: [string, (name: string) => string][] = [
    ['language_model.model. and language_model.lm_head', (n) => `language_model.${n}`],
    ['model.language_model. and lm_head', (n) => n.replace(/^model\./, 'model.language_model.')],
  ];
  for (const [what, rename] of layouts) {
    test(`${what}: transformers' tiny-mistral goldens, last logits within 1e-4, greedy ids identical`, () => {
      const tensors: Tensors = new Map([...readTensors(mistral.path)].map(([n, v]) => [rename(n), v]));
      tensors.set('vision_tower.transformer.layers.0.attention.q_proj.weight', {
        shape: [32, 32],
        data: new Float32Array(1024),
      });
      assertGolden(variants.make(outer, tensors), mistral.path);
    });
  }
  test("Ministral 3's attention temperature (llama_4_scaling_beta) is refused in one line", () => {
    const scaled = {
      ...outer,
      text_config: { ...text, rope_parameters: { ...text.rope_parameters, llama_4_scaling_beta: 0.1 } },
    };
    assert.throws(
      () => loadModel(variants.withFiles({ 'config.json': scaled }), new CpuBackend()),
      /llama_4_scaling_beta .* is not supported/,
    );
  });
});
