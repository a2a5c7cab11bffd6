import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Backend, HostTensor, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadModelConfig } from '../../src/loader/hf-config.ts';
import type { WeightSource } from '../../src/loader/safetensors.ts';
import { loadDummyModel } from '../../src/models/dummy.ts';
import { pickArchitecture } from '../../src/models/registry.ts';
import { ModelWeights } from '../../src/models/weights.ts';
import { deviceWeights } from '../../src/runner/weight-bytes.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { PagedSession } from '../helpers/paged-session.ts';

// The shape of Qwen/Qwen3-30B-A3B's published config.json (4.x style: num_experts, rope_theta, torch_dtype), as in
// bench/configs/qwen3-30b-a3b; the tests shrink copies of it.
const QWEN3_30B_A3B = {
  architectures: ['Qwen3MoeForCausalLM'],
  model_type: 'qwen3_moe',
  vocab_size: 151936,
  hidden_size: 2048,
  intermediate_size: 6144,
  moe_intermediate_size: 768,
  num_experts: 128,
  num_experts_per_tok: 8,
  norm_topk_prob: true,
  decoder_sparse_step: 1,
  mlp_only_layers: [],
  num_hidden_layers: 48,
  num_attention_heads: 32,
  num_key_value_heads: 4,
  head_dim: 128,
  max_position_embeddings: 40960,
  rope_theta: 1000000.0,
  rms_norm_eps: 1e-6,
  hidden_act: 'silu',
  attention_bias: false,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  bos_token_id: 151643,
  eos_token_id: 151645,
};
const SHRUNK = {
  ...QWEN3_30B_A3B,
  vocab_size: 256,
  hidden_size: 64,
  intermediate_size: 96,
  moe_intermediate_size: 24,
  num_experts: 16,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  max_position_embeddings: 512,
};

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function configDir(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-moe-config-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

const noSource: WeightSource = {
  names: () => [],
  has: () => false,
  get: () => assert.fail('no stored data'),
  close() {},
};

/** Dummy-style weights (every tensor the architecture asks for, in its config shape) with seeded random values. */
class RandomWeights extends ModelWeights {
  private readonly rand = mulberry32(3);
  override has(): boolean {
    return false;
  }
  override host(name: string, shape: readonly number[]): HostTensor {
    const n = shape.reduce((a, d) => a * d, 1);
    const scale = shape.length === 1 ? 0.2 : 1 / Math.sqrt(shape.at(-1)!);
    const data = Float32Array.from({ length: n }, () => (shape.length === 1 ? 1 : 0) + (this.rand() * 2 - 1) * scale);
    return { name, shape: [...shape], dtype: 'f32', bytes: new Uint8Array(data.buffer) };
  }
}

/** A stand-in backend that records what the model loads and fails on any op. */
function recording(name: 'cpu' | 'cuda'): { backend: Backend; loaded: HostTensor[] } {
  const loaded: HostTensor[] = [];
  const backend = new Proxy({} as Backend, {
    get: (_, key) => {
      if (key === 'loadWeight')
        return (w: HostTensor): Tensor => {
          loaded.push(w);
          return { shape: w.shape, dtype: 'bf16' };
        };
      if (key === 'name') return name;
      // A stand-in for one rank: the model's weights whole.
      if (key === 'tensorParallelSize') return 1;
      return () => assert.fail(`${String(key)} called while building the model`);
    },
  });
  return { backend, loaded };
}

test('a shrunken Qwen3-30B-A3B-shaped config (4.x style) builds with dummy-style weights and runs on the CPU', () => {
  const dir = configDir(SHRUNK);
  const config = loadModelConfig(dir);
  const backend = new CpuBackend({ threads: 1 });
  const model = pickArchitecture(config, dir).build(config, new RandomWeights(noSource, backend, dir), backend, {});
  assert.deepEqual(model.kvShape, { numLayers: 3, numKvHeads: 2, headDim: 16 });
  const session = new PagedSession(model, 4);
  const [prefill] = session.step([{ seq: 0, tokens: [1, 50, 200, 7, 9, 33] }]);
  const [decode] = session.step([{ seq: 0, tokens: [12] }]);
  for (const row of [prefill!, decode!]) {
    assert.equal(row.length, 256);
    assert.ok(row.every(Number.isFinite));
  }
  assert.notDeepEqual(prefill, decode);
});

test("dummy weights stack each layer's experts: router [E, H], gate/up [E, 2I, H], down [E, H, I]", () => {
  const { backend, loaded } = recording('cuda');
  loadDummyModel(configDir(SHRUNK), backend);
  const shapes = loaded.map((w) => w.shape.join('x'));
  const [E, I, H] = [16, 24, 64];
  assert.equal(shapes.filter((s) => s === `${E}x${H}`).length, 3, 'a router per layer');
  assert.equal(shapes.filter((s) => s === `${E}x${2 * I}x${H}`).length, 3);
  assert.equal(shapes.filter((s) => s === `${E}x${H}x${I}`).length, 3);
  assert.ok(!loaded.some((w) => w.name.includes('mlp.gate_proj')), 'no dense MLP in an all-sparse model');
});

test("the weight bytes of Qwen3-30B-A3B's full shape count every expert (about 61 GB in bf16)", () => {
  const c = QWEN3_30B_A3B;
  const [H, E, I, L] = [c.hidden_size, c.num_experts, c.moe_intermediate_size, c.num_hidden_layers];
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  const bytes = (elements: number) => Math.ceil((elements * 2) / 256) * 256;
  const perLayer =
    2 * bytes(H) + // input and post-attention norms
    bytes((q + 2 * kv) * H) + // packed q/k/v
    bytes(H * q) + // o_proj
    2 * bytes(c.head_dim) + // q/k norms
    bytes(E * H) + // router
    bytes(E * 2 * I * H) + // experts' gate/up
    bytes(E * H * I); // experts' down
  const want = L * perLayer + 2 * bytes(c.vocab_size * H) + bytes(H);
  const got = deviceWeights(configDir(QWEN3_30B_A3B), { dtype: 'bf16', dummy: true }).bytes;
  assert.equal(got, want);
  assert.ok(got > 60e9 && got < 62e9, `${got} bytes`);
  // The benchmarks' copy of the published config is the same shape.
  assert.equal(
    deviceWeights(join(projectRoot, 'bench', 'configs', 'qwen3-30b-a3b'), { dtype: 'bf16', dummy: true }).bytes,
    want,
  );
});

test('decoder_sparse_step and mlp_only_layers keep some layers dense, with the dense intermediate_size', () => {
  const { backend, loaded } = recording('cuda');
  loadDummyModel(configDir({ ...SHRUNK, num_hidden_layers: 4, decoder_sparse_step: 2, mlp_only_layers: [3] }), backend);
  const sparse = [0, 1, 2, 3].filter((i) => loaded.some((w) => w.name === `model.layers.${i}.mlp.gate.weight`));
  assert.deepEqual(sparse, [1]);
  const dense = loaded.filter((w) => /mlp\.gate_proj\.weight \+ .*mlp\.up_proj\.weight$/.test(w.name));
  assert.deepEqual(
    dense.map((w) => [w.name.slice(0, 14), ...w.shape]),
    [0, 2, 3].map((i) => [`model.layers.${i}`, 2 * 96, 64]),
  );
});

test('num_experts_per_tok beyond the experts, or not an integer, is refused in one line naming the field', () => {
  const { backend } = recording('cpu');
  assert.throws(
    () => loadDummyModel(configDir({ ...SHRUNK, num_experts_per_tok: 17 }), backend),
    /^UserError: config\.json: "num_experts_per_tok" is 17, expected 1 to the 16 experts$/,
  );
  assert.throws(
    () => loadDummyModel(configDir({ ...SHRUNK, num_experts: 'many' }), backend),
    /config\.json: "num_experts" must be a non-negative integer, got "many"/,
  );
});
