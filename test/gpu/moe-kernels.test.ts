import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Backend, DType, MoeSpec, MoeWeights } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { MOE_GEMV_MAX_TOKENS, moe, routeAndGroup } from '../../src/backend/cuda/moe.ts';
import { cuda } from '../../src/backend/cuda/tensor.ts';
import { gpuSkip, hostTensor, randomValues, relL2 } from '../helpers/gpu.ts';
import { type MoeArrays, referenceMoe } from '../helpers/moe-reference.ts';

const skip = gpuSkip();
/** Relative L2 allowed against float64 (inputs already rounded to the storage type; 16-bit intermediates). */
const TOL: Record<DType, number> = { f32: 2e-5, f16: 5e-3, bf16: 1e-2 };
const cpu = new CpuBackend();
let seed = (Date.now() & 0xffff) * 1000;

interface Case {
  T: number;
  H: number;
  E: number;
  I: number;
  spec: MoeSpec;
  /** Shared expert width, 0: none. */
  Is?: number;
  gated?: boolean;
  /**
   * A dense random router (f32 only). Otherwise the router is one-hot over the first E hidden columns, so the router
   * logits are x's own values on every side exactly and 16-bit rounding cannot swap two near-tied experts.
   */
  randomRouter?: boolean;
  /** Experts 0 .. hot-1 are every token's first choices (one-hot router): ragged loads, an expert with T rows. */
  hot?: number;
}

/** The same random MoE weights and input on the GPU, the CPU twin and float64; the GPU arena is poisoned first. */
function run(g: CudaBackend, dtype: DType, c: Case): { got: Float32Array; twin: Float32Array; want: Float64Array } {
  const load = (b: Backend, name: string, shape: number[], v: Float32Array) => b.loadWeight(hostTensor(name, shape, v));
  const rand = (shape: number[], scale: number) =>
    randomValues(
      shape.reduce((a, d) => a * d, 1),
      seed++,
      scale,
      dtype,
    );
  const { T, H, E, I, Is = 0 } = c;
  const router = c.randomRouter ? rand([E, H], 1) : new Float32Array(E * H);
  if (!c.randomRouter) for (let e = 0; e < E; e++) router[e * H + e] = 1;
  const parts: [string, number[], Float32Array][] = [
    ['router', [E, H], router],
    ['gate_up', [E, 2 * I, H], rand([E, 2 * I, H], 1 / Math.sqrt(H))],
    ['down', [E, H, I], rand([E, H, I], 1 / Math.sqrt(I))],
  ];
  if (Is) {
    parts.push(['shared.gate_up', [2 * Is, H], rand([2 * Is, H], 1 / Math.sqrt(H))]);
    parts.push(['shared.down', [H, Is], rand([H, Is], 1 / Math.sqrt(Is))]);
    if (c.gated) parts.push(['shared.gate', [1, H], rand([1, H], 1)]);
  }
  const x = rand([T, H], 2);
  // Exact in every storage type and above every other logit (|x| < 2).
  for (let t = 0; t < T; t++) for (let e = 0; e < (c.hot ?? 0); e++) x[t * H + e] = 3 + 0.25 * e;
  const weights = (b: Backend): MoeWeights => {
    const [r, gu, d, sgu, sd, sg] = parts.map(([name, shape, v]) => load(b, name, shape, v));
    return { router: r!, gateUp: gu!, down: d!, shared: sgu && sd ? { gateUp: sgu, down: sd, gate: sg } : undefined };
  };
  const gw = weights(g);
  const gx = load(g, 'x', [T, H], x);
  g.ctx.arena.reset();
  g.ctx.arena.poison();
  const got = g.toHost(moe(g.ctx, g.linears, gx, gw, c.spec));
  const twin = cpu.toHost(cpu.moe(load(cpu, 'x', [T, H], x), weights(cpu), c.spec));
  const [, gateUp, down, sharedGateUp, sharedDown, sharedGate] = parts.map(([, , v]) => v);
  const arrays: MoeArrays = {
    router,
    gateUp: gateUp!,
    down: down!,
    shared: sharedGateUp && sharedDown ? { gateUp: sharedGateUp, down: sharedDown, gate: sharedGate } : undefined,
  };
  return { got, twin, want: referenceMoe(x, T, H, E, I, arrays, c.spec) };
}

const CASES: Case[] = [
  // Decode steps (up to MOE_GEMV_MAX_TOKENS tokens: routing and grouping in one launch, moe_gemv.cu). Hidden 2,048 and
  // 1,024 split the gate/up stream over 4 / 2 warps in 16 bits (8 / 4 in f32); the others one warp per row group.
  { T: 1, H: 2048, E: 16, I: 96, spec: { topK: 8, normTopK: true } },
  { T: 2, H: 1024, E: 32, I: 128, spec: { topK: 4, normTopK: true } },
  { T: 8, H: 256, E: 128, I: 96, spec: { topK: 8, normTopK: true } },
  // Ragged loads: 3 experts take all 8 tokens (TMAX 8 rows), the rest 0-2; 5 tokens in TMAX 8; features that leave a
  // ragged last block (H 264: 132 row pairs of down).
  { T: 8, H: 256, E: 128, I: 96, spec: { topK: 8, normTopK: false }, hot: 3 },
  { T: 5, H: 512, E: 64, I: 88, spec: { topK: 6, normTopK: true }, hot: 1, Is: 64, gated: true },
  { T: 4, H: 264, E: 32, I: 88, spec: { topK: 4, normTopK: true }, hot: 2 },
  { T: 1, H: 64, E: 8, I: 48, spec: { topK: 2, normTopK: true } },
  { T: 7, H: 96, E: 8, I: 40, spec: { topK: 2, normTopK: false }, Is: 80, gated: true },
  { T: 3, H: 256, E: 128, I: 96, spec: { topK: 8, normTopK: true } },
  // A hidden size that is not a whole number of 16-byte vectors in 16 bits: the tile kernel at decode (f32: moe_gemv).
  { T: 2, H: 60, E: 8, I: 36, spec: { topK: 2, normTopK: false } },
  // Past a decode step: the separate routing and grouping launches and the tile kernels (tensor cores in 16 bits).
  { T: 9, H: 128, E: 16, I: 64, spec: { topK: 8, normTopK: true } },
  { T: 70, H: 128, E: 16, I: 72, spec: { topK: 4, normTopK: true } },
  { T: 300, H: 200, E: 60, I: 36, spec: { topK: 4, normTopK: false }, Is: 144, gated: true },
  { T: 33, H: 64, E: 4, I: 32, spec: { topK: 1, normTopK: true }, Is: 64 },
  { T: 200, H: 64, E: 4, I: 40, spec: { topK: 2, normTopK: true } },
  { T: 512, H: 256, E: 32, I: 64, spec: { topK: 8, normTopK: true }, hot: 2 },
];

/** Each token's experts (logit descending, the lower id first on a tie) and routing weights, in float64. */
function routeReference(logits: Float32Array, T: number, E: number, spec: MoeSpec) {
  const k = spec.topK;
  const ids: number[] = [];
  const weights: number[] = [];
  for (let t = 0; t < T; t++) {
    const l = Array.from(logits.subarray(t * E, (t + 1) * E));
    const max = Math.max(...l);
    const p = l.map((v) => Math.exp(v - max));
    const chosen = p
      .map((_, e) => e)
      .sort((a, b) => l[b]! - l[a]! || a - b)
      .slice(0, k);
    const z = spec.normTopK ? chosen.reduce((s, e) => s + p[e]!, 0) : p.reduce((s, v) => s + v, 0);
    ids.push(...chosen);
    weights.push(...chosen.map((e) => p[e]! / z));
  }
  return { ids, weights };
}

/**
 * moe.ts routeAndGroup on random logits (coarse ones: many exact ties) against float64: the same experts, the weights
 * to float rounding, and a grouping that is exactly the pairs of each expert (offsets, pairs, their inverse pos, the
 * active list then -1), every output read back from a poisoned arena.
 */
function checkRouting(g: CudaBackend, dtype: DType, T: number, E: number, spec: MoeSpec, coarse: boolean): void {
  const k = spec.topK;
  const n = T * k;
  const logits = randomValues(T * E, seed++, 4, dtype);
  if (coarse) for (let i = 0; i < logits.length; i++) logits[i] = Math.round(logits[i]!);
  const gl = g.loadWeight(hostTensor('logits', [T, E], logits));
  g.ctx.arena.reset();
  g.ctx.arena.poison();
  const r = routeAndGroup(g.ctx, cuda(gl).ptr, T, E, spec);
  const ints = (ptr: bigint, count: number) => {
    const a = new Int32Array(count);
    g.ctx.drv.download(a, ptr);
    return Array.from(a);
  };
  const weights = new Float32Array(n);
  g.ctx.drv.download(weights, r.weights);
  const [ids, offsets, pairs, pos] = [ints(r.ids, n), ints(r.offsets, E + 1), ints(r.pairs, n), ints(r.pos, n)];
  const active = ints(r.active, Math.min(n, E));
  const what = `${dtype} T ${T} E ${E} k ${k}${coarse ? ' coarse' : ''} (seed ${seed})`;
  const want = routeReference(logits, T, E, spec);
  assert.deepEqual(ids, want.ids, `${what}: experts`);
  for (const [i, w] of want.weights.entries())
    assert.ok(Math.abs(weights[i]! - w) <= 1e-6 + 1e-5 * w, `${what}: weight ${i} ${weights[i]} against ${w}`);
  assert.equal(offsets[0], 0, `${what}: offsets[0]`);
  const chosen: number[] = [];
  for (let e = 0; e < E; e++) {
    const rows = pairs.slice(offsets[e], offsets[e + 1]);
    const mine = ids.flatMap((id, p) => (id === e ? [p] : []));
    assert.deepEqual(
      [...rows].sort((a, b) => a - b),
      mine,
      `${what}: expert ${e}'s pairs`,
    );
    for (const [j, p] of rows.entries()) assert.equal(pos[p], offsets[e]! + j, `${what}: pos of pair ${p}`);
    if (mine.length) chosen.push(e);
  }
  assert.equal(offsets[E], n, `${what}: offsets[E]`);
  assert.deepEqual(active, [...chosen, ...Array(Math.min(n, E) - chosen.length).fill(-1)], `${what}: active experts`);
}

describe('CUDA mixture-of-experts kernels against float64', () => {
  test('routing and grouping: one launch up to a decode step, two past it', { skip }, () => {
    for (const dtype of ['f32', 'bf16'] as const) {
      const g = new CudaBackend({ dtype, graphs: false });
      for (const T of [1, 2, MOE_GEMV_MAX_TOKENS, MOE_GEMV_MAX_TOKENS + 1, 300])
        for (const coarse of [false, true]) {
          checkRouting(g, dtype, T, 128, { topK: 8, normTopK: true }, coarse);
          checkRouting(g, dtype, T, 60, { topK: 4, normTopK: false }, coarse);
        }
      checkRouting(g, dtype, 3, 8, { topK: 8, normTopK: false }, false);
      checkRouting(g, dtype, 5, 1024, { topK: 2, normTopK: true }, true);
      checkRouting(g, dtype, 40, 1000, { topK: 50, normTopK: true }, false);
    }
  });

  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    test(`routing, grouped GEMVs / GEMMs and combine over ragged shapes (${dtype})`, { skip }, () => {
      const g = new CudaBackend({ dtype, graphs: false });
      for (const c of CASES) {
        const { got, twin, want } = run(g, dtype, c);
        const what = `T ${c.T} H ${c.H} E ${c.E} I ${c.I} k ${c.spec.topK} hot ${c.hot ?? 0} (seed ${seed})`;
        assert.ok(relL2(got, want) <= TOL[dtype], `${what}: GPU relative L2 ${relL2(got, want)}`);
        assert.ok(relL2(twin, want) <= TOL.f32, `${what}: CPU twin relative L2 ${relL2(twin, want)}`);
      }
    });
  }

  test('a dense random router (f32)', { skip }, () => {
    const g = new CudaBackend({ dtype: 'f32', graphs: false });
    for (const c of CASES.filter((c) => !c.hot)) {
      const { got, want } = run(g, 'f32', { ...c, randomRouter: true });
      assert.ok(relL2(got, want) <= TOL.f32, `T ${c.T} E ${c.E}: relative L2 ${relL2(got, want)} (seed ${seed})`);
    }
  });
});
