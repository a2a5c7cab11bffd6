import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { encodeSafetensors, openSafetensors } from '../../src/loader/safetensors.ts';
import { loadModel } from '../../src/models/load.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { type MoeArrays, referenceMoe } from '../helpers/moe-reference.ts';
import { maxAbsDiff, PagedSession } from '../helpers/paged-session.ts';

// One-layer models with random weights, written under each family's tensor names in a 4.x-style config, against a
// float64 forward written out here: embeddings, RMSNorm, q/k/v (+ bias), neox RoPE, causal GQA attention, o_proj,
// the MoE block (tests/helpers/moe-reference.ts), final norm, LM head.
const V = 96;
const H = 32;
const HEADS = 4;
const KV_HEADS = 2;
const D = 8;
const E = 6;
const I = 12;
const EPS = 1e-6;
const THETA = 10000;

type Tensors = Map<string, { shape: number[]; data: Float32Array }>;

interface Family {
  architecture: string;
  config: Record<string, unknown>;
  qkvBias: boolean;
  normTopK: boolean;
  topK: number;
  /** Shared expert width (Qwen2-MoE), 0 without. */
  shared: number;
  /** Stores the MoE block's arrays under the family's names. */
  store(t: Tensors, moe: MoeArrays, put: Put): void;
}

type Put = (name: string, shape: number[], data?: Float32Array) => Float32Array;

const slice = (a: ArrayLike<number>, from: number, n: number) =>
  Float32Array.from({ length: n }, (_, i) => a[from + i]!);

/** Per expert, as published checkpoints store them. */
function perExpert(block: string, [gate, up, down]: string[]) {
  return (_: Tensors, moe: MoeArrays, put: Put) => {
    put(`model.layers.0.${block}.gate.weight`, [E, H], Float32Array.from(moe.router));
    for (let e = 0; e < E; e++) {
      const p = `model.layers.0.${block}.experts.${e}`;
      put(`${p}.${gate}.weight`, [I, H], slice(moe.gateUp, e * 2 * I * H, I * H));
      put(`${p}.${up}.weight`, [I, H], slice(moe.gateUp, (e * 2 + 1) * I * H, I * H));
      put(`${p}.${down}.weight`, [H, I], slice(moe.down, e * H * I, H * I));
    }
  };
}

const FAMILIES: Record<string, Family> = {
  'Qwen2-MoE (shared expert, top-k not renormalised)': {
    architecture: 'Qwen2MoeForCausalLM',
    config: {
      model_type: 'qwen2_moe',
      num_experts: E,
      num_experts_per_tok: 2,
      moe_intermediate_size: I,
      shared_expert_intermediate_size: 20,
      norm_topk_prob: false,
      decoder_sparse_step: 1,
      mlp_only_layers: [],
      intermediate_size: 40,
      use_sliding_window: false,
    },
    qkvBias: true,
    normTopK: false,
    topK: 2,
    shared: 20,
    store(t, moe, put) {
      perExpert('mlp', ['gate_proj', 'up_proj', 'down_proj'])(t, moe, put);
      const s = moe.shared!;
      put('model.layers.0.mlp.shared_expert.gate_proj.weight', [20, H], slice(s.gateUp, 0, 20 * H));
      put('model.layers.0.mlp.shared_expert.up_proj.weight', [20, H], slice(s.gateUp, 20 * H, 20 * H));
      put('model.layers.0.mlp.shared_expert.down_proj.weight', [H, 20], Float32Array.from(s.down));
      put('model.layers.0.mlp.shared_expert_gate.weight', [1, H], Float32Array.from(s.gate!));
    },
  },
  'Mixtral (block_sparse_moe, w1/w3/w2, always renormalised)': {
    architecture: 'MixtralForCausalLM',
    config: { model_type: 'mixtral', num_local_experts: E, num_experts_per_tok: 2, intermediate_size: I },
    qkvBias: false,
    normTopK: true,
    topK: 2,
    shared: 0,
    store: perExpert('block_sparse_moe', ['w1', 'w3', 'w2']),
  },
  "Mixtral in transformers 5's fused layout (mlp.gate, experts.gate_up_proj / down_proj)": {
    architecture: 'MixtralForCausalLM',
    config: { model_type: 'mixtral', num_local_experts: E, num_experts_per_tok: 3, intermediate_size: I },
    qkvBias: false,
    normTopK: true,
    topK: 3,
    shared: 0,
    store(_, moe, put) {
      put('model.layers.0.mlp.gate.weight', [E, H], Float32Array.from(moe.router));
      put('model.layers.0.mlp.experts.gate_up_proj', [E, 2 * I, H], Float32Array.from(moe.gateUp));
      put('model.layers.0.mlp.experts.down_proj', [E, H, I], Float32Array.from(moe.down));
    },
  },
};

function rmsNorm(x: ArrayLike<number>, w: ArrayLike<number>): Float64Array {
  const ms = Array.from(x).reduce((a, v) => a + v * v, 0) / x.length;
  const r = 1 / Math.sqrt(ms + EPS);
  return Float64Array.from(x, (v, i) => v * r * w[i]!);
}

/** y = W x (+ b) for W `[out, in]`. */
function matVec(w: ArrayLike<number>, x: ArrayLike<number>, out: number, b?: ArrayLike<number>): Float64Array {
  const n = x.length;
  return Float64Array.from({ length: out }, (_, o) => {
    let s = b ? b[o]! : 0;
    for (let i = 0; i < n; i++) s += w[o * n + i]! * x[i]!;
    return s;
  });
}

/** Neox RoPE on each head of x at position pos, in place. */
function rope(x: Float64Array, heads: number, pos: number): void {
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < D / 2; i++) {
      const angle = pos * THETA ** ((-2 * i) / D);
      const [a, b] = [x[h * D + i]!, x[h * D + i + D / 2]!];
      x[h * D + i] = a * Math.cos(angle) - b * Math.sin(angle);
      x[h * D + i + D / 2] = b * Math.cos(angle) + a * Math.sin(angle);
    }
  }
}

/** Every position's logits of the one-layer model over `ids`, in float64. */
function referenceLogits(t: Tensors, fam: Family, moe: MoeArrays, ids: number[]): Float64Array[] {
  const g = (name: string) => t.get(`model.${name}`)?.data ?? t.get(name)!.data;
  const p = 'layers.0';
  const bias = (n: string) => (fam.qkvBias ? g(`${p}.self_attn.${n}.bias`) : undefined);
  const xs = ids.map((id) => Float64Array.from(g('embed_tokens.weight').subarray(id * H, (id + 1) * H)));
  const qs: Float64Array[] = [];
  const ks: Float64Array[] = [];
  const vs: Float64Array[] = [];
  xs.forEach((x, pos) => {
    const h = rmsNorm(x, g(`${p}.input_layernorm.weight`));
    const q = matVec(g(`${p}.self_attn.q_proj.weight`), h, HEADS * D, bias('q_proj'));
    const k = matVec(g(`${p}.self_attn.k_proj.weight`), h, KV_HEADS * D, bias('k_proj'));
    rope(q, HEADS, pos);
    rope(k, KV_HEADS, pos);
    qs.push(q);
    ks.push(k);
    vs.push(matVec(g(`${p}.self_attn.v_proj.weight`), h, KV_HEADS * D, bias('v_proj')));
  });
  const hidden = xs.map((x, pos) => {
    const attn = new Float64Array(HEADS * D);
    for (let head = 0; head < HEADS; head++) {
      const kvh = Math.floor(head / (HEADS / KV_HEADS));
      const scores = ks.slice(0, pos + 1).map((k) => {
        let s = 0;
        for (let d = 0; d < D; d++) s += qs[pos]![head * D + d]! * k[kvh * D + d]!;
        return s / Math.sqrt(D);
      });
      const max = Math.max(...scores);
      const z = scores.reduce((a, s) => a + Math.exp(s - max), 0);
      scores.forEach((s, j) => {
        for (let d = 0; d < D; d++) attn[head * D + d] += (Math.exp(s - max) / z) * vs[j]![kvh * D + d]!;
      });
    }
    const o = matVec(g(`${p}.self_attn.o_proj.weight`), attn, H);
    return x.map((v, i) => v + o[i]!);
  });
  return hidden.map((x) => {
    const h = rmsNorm(x, g(`${p}.post_attention_layernorm.weight`));
    const m = referenceMoe(h, 1, H, E, I, moe, { topK: fam.topK, normTopK: fam.normTopK });
    const out = rmsNorm(
      x.map((v, i) => v + m[i]!),
      g('norm.weight'),
    );
    return matVec(g('lm_head.weight'), out, V);
  });
}

/** Writes the one-layer model of `fam` with seeded random weights; returns its tensors and MoE arrays. */
function writeModel(dir: string, fam: Family, seed: number): { tensors: Tensors; moe: MoeArrays } {
  const r = mulberry32(seed);
  const rand = (n: number, scale: number) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
  const tensors: Tensors = new Map();
  const put: Put = (name, shape, data) => {
    const n = shape.reduce((a, d) => a * d, 1);
    const d = data ?? (shape.length === 1 ? rand(n, 0.3).map((v) => 1 + v) : rand(n, 1 / Math.sqrt(shape.at(-1)!)));
    tensors.set(name, { shape, data: d });
    return d;
  };
  const moe: MoeArrays = {
    router: rand(E * H, 1),
    gateUp: rand(E * 2 * I * H, 0.4),
    down: rand(E * H * I, 0.4),
    shared: fam.shared
      ? { gateUp: rand(2 * fam.shared * H, 0.3), down: rand(H * fam.shared, 0.3), gate: rand(H, 0.5) }
      : undefined,
  };
  put('model.embed_tokens.weight', [V, H]);
  put('model.layers.0.input_layernorm.weight', [H]);
  for (const [n, out] of [
    ['q_proj', HEADS * D],
    ['k_proj', KV_HEADS * D],
    ['v_proj', KV_HEADS * D],
  ] as const) {
    put(`model.layers.0.self_attn.${n}.weight`, [out, H]);
    if (fam.qkvBias) put(`model.layers.0.self_attn.${n}.bias`, [out], rand(out, 0.2));
  }
  put('model.layers.0.self_attn.o_proj.weight', [H, HEADS * D]);
  put('model.layers.0.post_attention_layernorm.weight', [H]);
  fam.store(tensors, moe, put);
  put('model.norm.weight', [H]);
  put('lm_head.weight', [V, H]);
  const config = {
    architectures: [fam.architecture],
    vocab_size: V,
    hidden_size: H,
    num_hidden_layers: 1,
    num_attention_heads: HEADS,
    num_key_value_heads: KV_HEADS,
    max_position_embeddings: 256,
    rms_norm_eps: EPS,
    rope_theta: THETA,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    ...fam.config,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors([...tensors].map(([name, t]) => ({ name, ...t }))));
  return { tensors, moe };
}

for (const [what, fam] of Object.entries(FAMILIES)) {
  describe(what, () => {
    test('prefill and paged decode (block size 4) match a float64 one-layer forward within 1e-4', () => {
      const dir = mkdtempSync(join(tmpdir(), 'pagoda-moe-'));
      try {
        const { tensors, moe } = writeModel(dir, fam, 7);
        const ids = [3, 17, 90, 41, 41, 5, 62, 8, 77, 23, 1];
        const want = referenceLogits(tensors, fam, moe, ids);
        const model = loadModel(dir, new CpuBackend({ threads: 1 }));
        const prefill = new PagedSession(model, 4).step([{ seq: 0, tokens: ids, logits: 'all' }]);
        prefill.forEach((row, pos) => {
          assert.ok(maxAbsDiff(row, want[pos]!) < 1e-4, `position ${pos}: ${maxAbsDiff(row, want[pos]!)}`);
        });
        const session = new PagedSession(model, 4);
        session.step([{ seq: 0, tokens: ids.slice(0, 5), logits: 'none' }]);
        for (let pos = 5; pos < ids.length; pos++) {
          const [row] = session.step([{ seq: 0, tokens: [ids[pos]!] }]);
          assert.ok(maxAbsDiff(row!, want[pos]!) < 1e-4, `decode at ${pos}`);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

const qwen3Moe = modelFixture('tiny-qwen3-moe');

test("tiny-qwen3-moe with its experts in transformers 5's fused layout gives the same golden logits", {
  skip: qwen3Moe.skip,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-moe-fused-'));
  try {
    cpSync(qwen3Moe.path, dir, { recursive: true });
    const src = openSafetensors(qwen3Moe.path);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const [E8, I8, H8] = [cfg.num_local_experts, cfg.moe_intermediate_size, cfg.hidden_size];
    const fused = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const name of src.names()) {
      const m = /^(model\.layers\.\d+\.mlp\.experts)\.(\d+)\.(gate|up|down)_proj\.weight$/.exec(name);
      if (!m) {
        const t = src.get(name);
        fused.set(name, { shape: [...t.shape], data: toFloat32(t) });
        continue;
      }
      const [, base, e, proj] = m as unknown as [string, string, string, string];
      const key = `${base}.${proj === 'down' ? 'down_proj' : 'gate_up_proj'}`;
      const shape = proj === 'down' ? [E8, H8, I8] : [E8, 2 * I8, H8];
      if (!fused.has(key)) fused.set(key, { shape, data: new Float32Array(shape.reduce((a, d) => a * d, 1)) });
      const at = Number(e) * (shape[1]! * shape[2]!) + (proj === 'up' ? I8 * H8 : 0);
      fused.get(key)!.data.set(toFloat32(src.get(name)), at);
    }
    src.close();
    assert.ok(!fused.has('model.layers.0.mlp.experts.0.gate_proj.weight'));
    writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors([...fused].map(([name, t]) => ({ name, ...t }))));
    const prompt = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')).prompts[0];
    const [logits] = new PagedSession(loadModel(dir, new CpuBackend())).step([{ seq: 0, tokens: prompt.input_ids }]);
    assert.ok(maxAbsDiff(logits!, prompt.last_logits) < 1e-4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
