import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Backend, DType } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { actMulInto, fillConst } from '../../src/backend/cuda/elementwise.ts';
import {
  groupedGemm,
  MMA_TILE_BUILDS,
  MOE_COMBINE,
  MOE_GEMV,
  moe,
  moeGemvLaunch,
  moeTakesGemv,
} from '../../src/backend/cuda/moe.ts';
import {
  MOE_GEMV_MAX_TOKENS,
  type MoeRouting,
  routeAndGroup,
  routeTokens,
} from '../../src/backend/cuda/moe-routing.ts';
import { QuantCudaTensor } from '../../src/backend/cuda/quant-tensor.ts';
import { type CudaTensor, cuda, DTYPE_BYTES } from '../../src/backend/cuda/tensor.ts';
import type { MoeSpec, MoeWeights } from '../../src/backend/moe-spec.ts';
import type { QuantType } from '../../src/primitives/ggml-types.ts';
import { dequantize, quantize } from '../../src/primitives/quant/index.ts';
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

/**
 * Before the decode step's router kernel and down-projection combine: the router by the linear layer, moe_route_group
 * (or the two routing launches), both projections through moe_gemv (or the tile kernels, the tensor-core one in the
 * tile build named) and moe_combine.
 */
function separateLaunches(
  g: CudaBackend,
  x: CudaTensor,
  w: MoeWeights,
  spec: MoeSpec,
  build: (typeof MMA_TILE_BUILDS)[number],
): CudaTensor {
  const ctx = g.ctx;
  const [T, H] = x.shape as [number, number];
  const [E, twoI] = cuda(w.gateUp).shape as [number, number, number];
  const I = twoI / 2;
  const k = spec.topK;
  const n = T * k;
  const r = routeAndGroup(ctx, cuda(g.linears.linear(x, w.router)).ptr, T, E, spec);
  const act = ctx.empty([n, I]);
  const d = ctx.empty([n, H]);
  const [gateUp, down] = [cuda(w.gateUp).ptr, cuda(w.down).ptr];
  if (moeTakesGemv(ctx.dtype, T, H, I)) {
    const grouped = { offsets: r.offsets, pairs: r.pairs, active: r.active };
    for (const [y, xs, wp, m, kk, gated] of [
      [act.ptr, x.ptr, gateUp, I, H, true],
      [d.ptr, act.ptr, down, H, I, false],
    ] as const) {
      const l = moeGemvLaunch(ctx.dtype, T, Math.min(n, E), m, kk, gated);
      ctx
        .kernel(MOE_GEMV, l.defines)
        .launch(l.grid, l.block, { y, x: xs, w: wp, ...grouped, n: m, k: kk, gatherK: gated ? k : 0 });
    }
  } else {
    const gu = ctx.empty([n, 2 * I]);
    const grouped = { offsets: r.offsets, pairs: r.pairs, rows: n, experts: E };
    groupedGemm(ctx, { y: gu.ptr, x: x.ptr, w: gateUp, ...grouped, n: 2 * I, k: H, gatherK: k }, build);
    actMulInto(ctx, act.ptr, gu.ptr, n, I, 'silu');
    groupedGemm(ctx, { y: d.ptr, x: act.ptr, w: down, ...grouped, n: H, k: I, gatherK: 0 }, build);
  }
  let s = 0n;
  let sharedGate = 0n;
  if (w.shared) {
    s = cuda(g.linears.linear(g.linears.linearActMul(x, w.shared.gateUp, undefined, 'silu'), w.shared.down)).ptr;
    if (w.shared.gate) sharedGate = cuda(g.linears.linear(x, w.shared.gate)).ptr;
  }
  const out = ctx.empty([T, H]);
  const combine = { out: out.ptr, d: d.ptr, pos: r.pos, weights: r.weights, s, sharedGate, tokens: T, hidden: H, k };
  ctx.kernel(MOE_COMBINE).launch(ctx.grid1d(T * H), [256], combine);
  return out;
}

interface Run {
  /** moe() twice (the second after its launch counters were reset by the first), poisoned arena both times. */
  got: Float32Array;
  again: Float32Array;
  /** The same GPU weights through separateLaunches, in each of the tensor-core GEMM's tile builds. */
  separate: Float32Array[];
  twin: Float32Array;
  want: Float64Array;
}

/** The same random MoE weights and input on the GPU, the CPU twin and float64; the GPU arena is poisoned first. */
function run(g: CudaBackend, dtype: DType, c: Case): Run {
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
  const poisoned = <R>(f: () => R): R => {
    g.ctx.arena.reset();
    g.ctx.arena.poison();
    return f();
  };
  const got = poisoned(() => g.toHost(moe(g.ctx, g.linears, gx, gw, c.spec)));
  const again = poisoned(() => g.toHost(moe(g.ctx, g.linears, gx, gw, c.spec)));
  const separate = MMA_TILE_BUILDS.map((b) => poisoned(() => g.toHost(separateLaunches(g, cuda(gx), gw, c.spec, b))));
  const twin = cpu.toHost(cpu.moe(load(cpu, 'x', [T, H], x), weights(cpu), c.spec));
  const [, gateUp, down, sharedGateUp, sharedDown, sharedGate] = parts.map(([, , v]) => v);
  const arrays: MoeArrays = {
    router,
    gateUp: gateUp!,
    down: down!,
    shared: sharedGateUp && sharedDown ? { gateUp: sharedGateUp, down: sharedDown, gate: sharedGate } : undefined,
  };
  return { got, again, separate, twin, want: referenceMoe(x, T, H, E, I, arrays, c.spec) };
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
  // An ungated shared expert in a decode step (GraniteMoeShared's).
  { T: 2, H: 128, E: 8, I: 48, spec: { topK: 2, normTopK: true }, Is: 64 },
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
  // At most 16 rows an expert on average past a decode step (the tensor-core GEMM's 16-row tiles): two experts with
  // every token's rows (three tiles each), the rest a few; K 200 and 72 end in a partial 64-wide step.
  { T: 40, H: 200, E: 64, I: 72, spec: { topK: 8, normTopK: true }, hot: 2 },
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
 * A routing read back from the device against float64 over the logits it routed: the same experts, the weights to
 * float rounding, and a grouping that is exactly the pairs of each expert (offsets, pairs, their inverse pos, the
 * active list then -1).
 */
function verifyRouting(
  g: CudaBackend,
  logits: Float32Array,
  r: MoeRouting,
  T: number,
  E: number,
  spec: MoeSpec,
  what: string,
) {
  const n = T * spec.topK;
  const ints = (ptr: bigint, count: number) => {
    const a = new Int32Array(count);
    g.ctx.drv.download(a, ptr);
    return Array.from(a);
  };
  const weights = new Float32Array(n);
  g.ctx.drv.download(weights, r.weights);
  const [ids, offsets, pairs, pos] = [ints(r.ids, n), ints(r.offsets, E + 1), ints(r.pairs, n), ints(r.pos, n)];
  const active = ints(r.active, Math.min(n, E));
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
  return { ids, weights: Array.from(weights) };
}

/** moe-routing.ts routeAndGroup on random logits (coarse ones: many exact ties), outputs in a poisoned arena. */
function checkRouting(g: CudaBackend, dtype: DType, T: number, E: number, spec: MoeSpec, coarse: boolean): void {
  const logits = randomValues(T * E, seed++, 4, dtype);
  if (coarse) for (let i = 0; i < logits.length; i++) logits[i] = Math.round(logits[i]!);
  const gl = g.loadWeight(hostTensor('logits', [T, E], logits));
  g.ctx.arena.reset();
  g.ctx.arena.poison();
  const r = routeAndGroup(g.ctx, cuda(gl).ptr, T, E, spec);
  verifyRouting(
    g,
    logits,
    r,
    T,
    E,
    spec,
    `${dtype} T ${T} E ${E} k ${spec.topK}${coarse ? ' coarse' : ''} (seed ${seed})`,
  );
}

/** The routed families' shapes (hidden sizes cut down, Qwen3-30B-A3B's whole): experts, top-k, renormalised. */
const FAMILIES: { name: string; H: number; E: number; spec: MoeSpec }[] = [
  { name: 'Qwen3-MoE', H: 2048, E: 128, spec: { topK: 8, normTopK: true } },
  { name: 'Qwen2-MoE', H: 512, E: 60, spec: { topK: 4, normTopK: false } },
  { name: 'Mixtral', H: 1024, E: 8, spec: { topK: 2, normTopK: true } },
];

/**
 * moe-routing.ts routeTokens for T tokens of x: a decode step's moe_router_route (its logits against float64 from x and
 * the router, its routing against float64 over those logits) launched twice on fresh inputs (the second finds the
 * launch counter the first reset), and for a one-hot router (exact logits) the same bits as the router by the linear
 * layer then moe_route_group.
 */
function checkRouterRoute(
  g: CudaBackend,
  dtype: DType,
  T: number,
  H: number,
  E: number,
  spec: MoeSpec,
  oneHot: boolean,
) {
  const x = randomValues(T * H, seed++, 2, dtype);
  const router = oneHot ? new Float32Array(E * H) : randomValues(E * H, seed++, 1 / Math.sqrt(H), dtype);
  if (oneHot) for (let e = 0; e < E; e++) router[e * H + e] = 1;
  const gx = cuda(g.loadWeight(hostTensor('x', [T, H], x)));
  const gr = g.loadWeight(hostTensor('router', [E, H], router));
  const what = `${dtype} T ${T} H ${H} E ${E} k ${spec.topK}${oneHot ? ' one-hot' : ''} (seed ${seed})`;
  g.ctx.arena.reset();
  g.ctx.arena.poison();
  const r = routeTokens(g.ctx, g.linears, gx, gr, E, spec);
  const logits = g.toHost(r.logits);
  const exact = new Float64Array(T * E);
  for (let t = 0; t < T; t++)
    for (let e = 0; e < E; e++) for (let h = 0; h < H; h++) exact[t * E + e]! += x[t * H + h]! * router[e * H + h]!;
  assert.ok(relL2(logits, exact) <= TOL[dtype], `${what}: logits relative L2 ${relL2(logits, exact)}`);
  const fused = verifyRouting(g, logits, r, T, E, spec, what);
  if (!oneHot) return;
  g.ctx.arena.reset();
  g.ctx.arena.poison();
  const separate = routeAndGroup(g.ctx, cuda(g.linears.linear(gx, gr)).ptr, T, E, spec);
  assert.deepEqual(
    verifyRouting(g, logits, separate, T, E, spec, `${what} separate`),
    fused,
    `${what}: as separate launches`,
  );
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

  test("a decode step's router and routing in one launch: every routed family, 1 to 8 tokens, twice", { skip }, () => {
    for (const dtype of ['f32', 'bf16'] as const) {
      const g = new CudaBackend({ dtype, graphs: false });
      for (const { H, E, spec } of FAMILIES)
        for (let T = 1; T <= MOE_GEMV_MAX_TOKENS; T++)
          for (const oneHot of [true, false])
            for (let twice = 0; twice < 2; twice++) checkRouterRoute(g, dtype, T, H, E, spec, oneHot);
      // Hidden 60: in bf16 no whole number of 16-byte loads, so the linear layer then moe_route_group (the fallback);
      // in f32 (240 bytes) the fused kernel again.
      checkRouterRoute(g, dtype, 3, 60, 8, { topK: 2, normTopK: true }, true);
    }
  });

  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    test(`routing, grouped GEMVs / GEMMs and combine over ragged shapes (${dtype})`, { skip }, () => {
      const g = new CudaBackend({ dtype, graphs: false });
      for (const c of CASES) {
        const { got, again, separate, twin, want } = run(g, dtype, c);
        const what = `T ${c.T} H ${c.H} E ${c.E} I ${c.I} k ${c.spec.topK} hot ${c.hot ?? 0} (seed ${seed})`;
        assert.ok(relL2(got, want) <= TOL[dtype], `${what}: GPU relative L2 ${relL2(got, want)}`);
        assert.ok(relL2(twin, want) <= TOL.f32, `${what}: CPU twin relative L2 ${relL2(twin, want)}`);
        // One-hot routers give exact logits: the fused launches must give the separate launches' bits, every time, and
        // the tensor-core GEMM's tile builds the same bits.
        for (const [i, sep] of separate.entries())
          assert.deepEqual(got, sep, `${what}: as separate launches (${JSON.stringify(MMA_TILE_BUILDS[i])})`);
        assert.deepEqual(again, got, `${what}: a second run`);
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

/** A MoE case over experts kept in GGUF blocks: gate/up's and down's block types. */
type QuantCase = Case & { types: readonly [QuantType, QuantType] };

/**
 * Experts kept in GGUF blocks (a stacked `[E, R, cols]` quantized tensor, as a GGUF's ffn_*_exps): a decode step through
 * moe_quant.cu's GEMV over the blocks (16-bit compute: x and the gated product quantized to 8 bits per 32 values),
 * past one (and in f32) the chosen experts dequantized into the expert scratch, poisoned first, for the float
 * kernels. Against float64 over the blocks' own values and exact x: f32 reads them exactly (its tolerance); 16-bit
 * compute adds its storage's rounding (the dtype's tolerance) and, in a decode step, 8-bit activations in both
 * projections: 0.93-1.10 % relative L2 on these cases in a host emulation (x and the gated product through
 * q8RoundTrip, 25 seeds), so QUANT_DECODE_ERROR = 1.1 % beside it, and a quarter more.
 */
function runQuantized(g: CudaBackend, dtype: DType, c: QuantCase) {
  const { T, H, E, I, Is = 0 } = c;
  const rand = (n: number, scale: number) => randomValues(n, seed++, scale, dtype);
  const router = new Float32Array(E * H);
  for (let e = 0; e < E; e++) router[e * H + e] = 1;
  const blocks = (name: string, shape: number[], type: QuantType, scale: number) => {
    const count = shape.reduce((a, d) => a * d, 1);
    const bytes = quantize(type, rand(count, scale));
    return { host: { name, shape, dtype: type, bytes }, values: dequantize(type, bytes, count) };
  };
  const gateUp = blocks('gate_up', [E, 2 * I, H], c.types[0], 1 / Math.sqrt(H));
  const down = blocks('down', [E, H, I], c.types[1], 1 / Math.sqrt(I));
  const shared = Is ? { gateUp: rand(2 * Is * H, 1 / Math.sqrt(H)), down: rand(H * Is, 1 / Math.sqrt(Is)) } : undefined;
  const x = rand(T * H, 2);
  for (let t = 0; t < T; t++) for (let e = 0; e < (c.hot ?? 0); e++) x[t * H + e] = 3 + 0.25 * e;
  const weights = (b: Backend): MoeWeights => ({
    router: b.loadWeight(hostTensor('router', [E, H], router)),
    gateUp: b.loadWeight(gateUp.host),
    down: b.loadWeight(down.host),
    shared: shared && {
      gateUp: b.loadWeight(hostTensor('shared.gate_up', [2 * Is, H], shared.gateUp)),
      down: b.loadWeight(hostTensor('shared.down', [H, Is], shared.down)),
    },
  });
  const gw = weights(g);
  assert.ok(gw.gateUp instanceof QuantCudaTensor && gw.down instanceof QuantCudaTensor, 'the stacks stay in blocks');
  const gx = g.loadWeight(hostTensor('x', [T, H], x));
  const scratch = g.linears.quant.experts;
  const poisoned = () => {
    g.ctx.arena.reset();
    g.ctx.arena.poison();
    fillConst(g.ctx, scratch.ptr, scratch.bytes / DTYPE_BYTES[dtype], Number.NaN);
    return g.toHost(moe(g.ctx, g.linears, gx, gw, c.spec));
  };
  const got = poisoned();
  const again = poisoned();
  const twin = cpu.toHost(cpu.moe(cpu.loadWeight(hostTensor('x', [T, H], x)), weights(cpu), c.spec));
  const arrays: MoeArrays = { router, gateUp: gateUp.values, down: down.values, shared };
  return { got, again, twin, want: referenceMoe(x, T, H, E, I, arrays, c.spec) };
}

/** The relative L2 a decode step's 8-bit activations give these cases at most (runQuantized's comment). */
const QUANT_DECODE_ERROR = 0.011;

const QUANT_CASES: QuantCase[] = [
  // Decode steps: moe_quant_gemv_gated then moe_quant_gemv (16-bit), the expert scratch and moe_gemv (f32).
  { T: 1, H: 256, E: 16, I: 256, spec: { topK: 8, normTopK: true }, types: ['q4_k', 'q6_k'] },
  { T: 3, H: 512, E: 8, I: 256, spec: { topK: 2, normTopK: true }, types: ['q8_0', 'q4_0'], hot: 1 },
  { T: 8, H: 256, E: 32, I: 512, spec: { topK: 4, normTopK: false }, types: ['q5_k', 'q2_k'], hot: 2, Is: 64 },
  { T: 5, H: 256, E: 8, I: 256, spec: { topK: 3, normTopK: true }, types: ['q3_k', 'q5_0'] },
  { T: 2, H: 256, E: 8, I: 256, spec: { topK: 2, normTopK: true }, types: ['q4_1', 'q5_1'] },
  // Past a decode step: the chosen experts dequantized into the scratch, the grouped GEMMs over it.
  { T: 37, H: 256, E: 16, I: 256, spec: { topK: 4, normTopK: true }, types: ['q4_k', 'q6_k'] },
  { T: 300, H: 256, E: 8, I: 256, spec: { topK: 2, normTopK: true }, types: ['q8_0', 'q4_1'], hot: 1 },
];

describe('CUDA mixture-of-experts over experts kept in blocks, against float64 over the blocks', () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as const) {
    test(`decode GEMV over the blocks, or the chosen experts dequantized, every type (${dtype})`, { skip }, () => {
      const g = new CudaBackend({ dtype, graphs: false });
      const tol = dtype === 'f32' ? TOL.f32 : 1.25 * (QUANT_DECODE_ERROR + TOL[dtype]);
      for (const c of QUANT_CASES) {
        const { got, again, twin, want } = runQuantized(g, dtype, c);
        const what = `${c.types.join('/')} T ${c.T} H ${c.H} E ${c.E} I ${c.I} k ${c.spec.topK} (seed ${seed})`;
        assert.ok(relL2(got, want) <= tol, `${what}: GPU relative L2 ${relL2(got, want)}`);
        // The CPU twin over the same blocks, with its own 8-bit activations (q8_K for the k-quants: up to 1.95 % over
        // 24 seeds in that emulation).
        assert.ok(relL2(twin, want) <= 3e-2, `${what}: CPU twin relative L2 ${relL2(twin, want)}`);
        assert.deepEqual(again, got, `${what}: a second run`);
      }
    });
  }
});
