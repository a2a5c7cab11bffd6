import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Backend, HostTensor, Tensor } from '../../src/backend/backend.ts';
import { loadModelConfig } from '../../src/loader/hf-config.ts';
import { loadDummyModel } from '../../src/models/dummy.ts';
import { longRopeChoice, ropeSpecFromConfig } from '../../src/models/rope.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { maxAbsDiff, PagedSession } from '../helpers/paged-session.ts';
import { RandomDummyCpu } from '../helpers/random-dummy-cpu.ts';

/** microsoft/Phi-4-mini-instruct's shape in the transformers 4.x style: top-level rope_theta, rope_scaling "type". */
const published = join(projectRoot, 'bench/configs/phi4-mini');

/** Builds the model with dummy weights on a backend that only records what is loaded. */
function loadedShapes(dir: string): Map<string, readonly number[]> {
  const loaded = new Map<string, readonly number[]>();
  const recording = new Proxy({} as Backend, {
    get: (_, key) => {
      if (key === 'loadWeight') {
        return (w: HostTensor): Tensor => {
          loaded.set(w.name, w.shape);
          return { shape: [...w.shape], dtype: 'bf16' } as unknown as Tensor;
        };
      }
      if (key === 'name') return 'cpu';
      // A stand-in for one rank: the model's weights whole.
      if (key === 'tensorParallelSize') return 1;
      return () => assert.fail(`${String(key)} called while building the model`);
    },
  });
  loadDummyModel(dir, recording);
  return loaded;
}

describe('a Phi-4-mini-shaped 4.x config', () => {
  test('loads as Phi-3 with fused projections, tied embeddings, partial rotary and LongRoPE', () => {
    const cfg = loadModelConfig(published);
    assert.equal(cfg.architecture, 'Phi3ForCausalLM');
    const shapes = loadedShapes(published);
    assert.deepEqual(shapes.get('model.layers.31.self_attn.qkv_proj.weight'), [(24 + 2 * 8) * 128, 3072]);
    assert.deepEqual(shapes.get('model.layers.31.mlp.gate_up_proj.weight'), [2 * 8192, 3072]);
    assert.deepEqual(shapes.get('model.embed_tokens.weight'), [200064, 3072]);
    assert.equal(shapes.has('lm_head.weight'), false, 'tied embeddings serve as the LM head');
    const rope = ropeSpecFromConfig(cfg);
    assert.equal(rope.rotaryDim, 96);
    // 131072 / 4096 = 32: sqrt(1 + ln 32 / ln 4096) = sqrt(1 + 5/12)
    assert.ok(Math.abs(rope.mscale - Math.sqrt(17 / 12)) < 1e-12);
    assert.equal(longRopeChoice(cfg)?.factors, 'long');
    assert.equal(longRopeChoice(cfg, 4096)?.factors, 'short');
  });

  // Two layers of two heads, the published head size, rotary fraction and LongRoPE factors.
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-phi4-mini-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const shrunk = {
    ...JSON.parse(readFileSync(join(published, 'config.json'), 'utf8')),
    vocab_size: 300,
    hidden_size: 256,
    intermediate_size: 192,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(shrunk));
  const prompt = [5, 17, 250, 3, 99, 42, 7, 180, 64, 2, 11];

  test('a shrunken copy runs on the CPU: prefill agrees with token-by-token decode through the paged cache', () => {
    const model = loadDummyModel(dir, new RandomDummyCpu(7));
    const [prefill] = new PagedSession(model, 4).step([{ seq: 0, tokens: prompt }]);
    assert.equal(prefill!.length, 300);
    assert.ok(prefill!.every(Number.isFinite));
    const session = new PagedSession(model, 4);
    let last: Float32Array | undefined;
    for (const t of prompt) [last] = session.step([{ seq: 0, tokens: [t] }]);
    assert.ok(maxAbsDiff(last!, prefill!) < 1e-4, `decode differs from prefill by ${maxAbsDiff(last!, prefill!)}`);
  });

  test('the max model length given to the build reaches the rope: short and long factors differ', () => {
    const run = (maxModelLen?: number) =>
      new PagedSession(loadDummyModel(dir, new RandomDummyCpu(7), { maxModelLen })).step([
        { seq: 0, tokens: prompt },
      ])[0]!;
    const long = run();
    assert.ok(maxAbsDiff(run(131072), long) === 0);
    assert.ok(maxAbsDiff(run(4096), long) > 0.1, 'the short factors give other logits');
  });
});

describe('a Phi-3-mini-4k-shaped 4.x config (no rope scaling, sliding window)', () => {
  // Phi-3-mini-4k-instruct's fields (head size 96, sliding_window 2047 of 4096), shrunk to one layer of two heads and
  // a window of 4 tokens.
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-phi3-mini-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const config = (slidingWindow: number | null) => ({
    architectures: ['Phi3ForCausalLM'],
    model_type: 'phi3',
    vocab_size: 300,
    hidden_size: 192,
    intermediate_size: 256,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    max_position_embeddings: 4096,
    original_max_position_embeddings: 4096,
    rope_theta: 10000.0,
    rope_scaling: null,
    sliding_window: slidingWindow,
    rms_norm_eps: 1e-5,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
  });
  const lastLogits = (slidingWindow: number | null, tokens: number[]) => {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config(slidingWindow)));
    const model = loadDummyModel(dir, new RandomDummyCpu(3));
    return new PagedSession(model, 4).step([{ seq: 0, tokens }])[0]!;
  };

  test('with one layer and RoPE (relative positions), the last token sees only the window', () => {
    const prompt = [5, 17, 250, 3, 99, 42, 7, 180, 64, 2, 11];
    const windowed = lastLogits(4, prompt);
    const lastFour = lastLogits(4, prompt.slice(-4));
    assert.ok(maxAbsDiff(windowed, lastFour) < 1e-4, `differs by ${maxAbsDiff(windowed, lastFour)}`);
    assert.ok(maxAbsDiff(lastLogits(null, prompt), windowed) > 0.1, 'without the window every token counts');
  });
});
