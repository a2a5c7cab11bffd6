import type { DType, MoeSpec, MoeWeights, Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { actMulInto } from './elementwise.ts';
import { type ArgValues, declareKernel } from './kernel.ts';
import type { CudaLinear } from './linear.ts';
import { cuda, DTYPE_BYTES, rowsCols } from './tensor.ts';

// kernels/moe.cu
const ROUTE_ARGS = { logits: 'ptr', tokens: 'i32', experts: 'i32', k: 'i32', norm: 'i32' } as const;
export const MOE_ROUTE = declareKernel('moe', 'moe_route', { ids: 'ptr', weights: 'ptr', ...ROUTE_ARGS });
const GROUP_OUT = { offsets: 'ptr', pairs: 'ptr', pos: 'ptr', active: 'ptr' } as const;
export const MOE_GROUP = declareKernel('moe', 'moe_group', { ...GROUP_OUT, ids: 'ptr', n: 'i32', experts: 'i32' });
/** A decode step's routing and grouping in one launch (one block). */
export const MOE_ROUTE_GROUP = declareKernel('moe', 'moe_route_group', {
  ids: 'ptr',
  weights: 'ptr',
  ...GROUP_OUT,
  ...ROUTE_ARGS,
});
export const MOE_GEMM = declareKernel('moe', 'moe_gemm', {
  y: 'ptr',
  x: 'ptr',
  w: 'ptr',
  offsets: 'ptr',
  pairs: 'ptr',
  rows: 'i32',
  experts: 'i32',
  n: 'i32',
  k: 'i32',
  gatherK: 'i32',
});
/** kernels/moe_gemv.cu: the grouped GEMV for a decode step's few tokens (GATED: act(gate) * up). */
export const MOE_GEMV = declareKernel('moe_gemv', 'moe_gemv', {
  y: 'ptr',
  x: 'ptr',
  w: 'ptr',
  offsets: 'ptr',
  pairs: 'ptr',
  active: 'ptr',
  n: 'i32',
  k: 'i32',
  gatherK: 'i32',
});
/** kernels/moe_mma.cu: the grouped GEMM on tensor cores (16-bit storage), moe_gemm's arguments. */
export const MOE_GEMM_MMA = declareKernel('moe_mma', 'moe_gemm_mma', MOE_GEMM.args);
export const MOE_COMBINE = declareKernel('moe', 'moe_combine', {
  out: 'ptr',
  d: 'ptr',
  pos: 'ptr',
  weights: 'ptr',
  s: 'ptr',
  sharedGate: 'ptr',
  tokens: 'i32',
  hidden: 'i32',
  k: 'i32',
});

/** Tile of the grouped GEMM (MOE_BM x MOE_BN in kernels/moe.cu). */
const TILE_ROWS = 32;
const TILE_COLS = 64;
/** moe_group's shared table holds one entry per expert. */
const MAX_EXPERTS = 1024;
/**
 * Tokens up to which a step routes and groups in one launch and multiplies through moe_gemv (a decode step): an expert
 * then has at most this many rows, each weight row read once for all of them (TMAX = tokens rounded up to a power of
 * two, its accumulators in registers). Past it the tiles' weight reuse wins.
 */
export const MOE_GEMV_MAX_TOKENS = 8;
/** moe_gemv's warps per block (WARPS) and weight rows per warp group when not gated (ROWS). */
const GEMV_WARPS = 8;
const GEMV_ROWS = 2;
/** moe_gemm_mma's tile (MMA_BM x MMA_BN, MMA_WARPS warps, in kernels/moe_mma.cu). */
const MMA_TILE = 64;

/** Routing and grouping on the device: int32 / float32 arrays of the arena. */
export interface MoeRouting {
  /** [T, k] each token's experts, most probable first, and their routing weights (float). */
  ids: DevPtr;
  weights: DevPtr;
  /** [E + 1] each expert's first grouped row; [T k] the pair (token * k + slot) of each grouped row; its inverse. */
  offsets: DevPtr;
  pairs: DevPtr;
  pos: DevPtr;
  /** [min(T k, E)] the experts with rows, ascending, then -1: moe_gemv's blocks. */
  active: DevPtr;
}

/**
 * kernels/moe.cu's top-k routing over router logits [T, E] and the grouping of the (token, slot) pairs by expert: one
 * launch of one block for a decode step's few tokens, else a warp per token then one block.
 */
export function routeAndGroup(ctx: CudaContext, logits: DevPtr, T: number, E: number, spec: MoeSpec): MoeRouting {
  const k = spec.topK;
  const n = T * k;
  const ints = (count: number) => ctx.arena.alloc(count * 4);
  const r = {
    ids: ints(n),
    weights: ints(n),
    offsets: ints(E + 1),
    pairs: ints(n),
    pos: ints(n),
    active: ints(Math.min(n, E)),
  };
  const route = { logits, tokens: T, experts: E, k, norm: spec.normTopK ? 1 : 0 };
  if (T <= MOE_GEMV_MAX_TOKENS) {
    ctx.kernel(MOE_ROUTE_GROUP).launch([1], [32 * MOE_GEMV_MAX_TOKENS], { ...r, ...route });
  } else {
    ctx.kernel(MOE_ROUTE).launch([Math.ceil(T / 8)], [256], { ids: r.ids, weights: r.weights, ...route });
    ctx.kernel(MOE_GROUP).launch([1], [1024], { ...r, ids: r.ids, n, experts: E });
  }
  return r;
}

/**
 * The mixture-of-experts block (`Backend.moe`): router logits by the linear layer, then kernels/moe.cu: top-k
 * routing and the (token, slot) pairs grouped by expert; the experts' gate/up and down projections over the grouped
 * rows, each reading only the chosen experts' weights: for a decode step's few tokens kernels/moe_gemv.cu (the whole
 * grid streaming every chosen expert at once, act(gate) * up written by the first), else one grouped GEMM launch per
 * projection and the activation between; a combine applies the routing weights and adds the shared expert. Launch
 * shapes depend on the token count alone, so decode steps capture into graphs.
 */
export function moe(ctx: CudaContext, linears: CudaLinear, x: Tensor, w: MoeWeights, spec: MoeSpec): Tensor {
  const xt = ctx.own(x);
  const [T, H] = rowsCols(xt);
  const gateUp = cuda(w.gateUp);
  const [E, twoI] = gateUp.shape as [number, number, number];
  const I = twoI / 2;
  const k = spec.topK;
  if (E > MAX_EXPERTS) throw new Error(`moe: ${E} experts, the CUDA kernels handle at most ${MAX_EXPERTS}`);
  if (!Number.isInteger(k) || k < 1 || k > E) throw new Error(`moe: top-k ${k} outside 1..${E} experts`);
  const out = ctx.empty([T, H]);
  if (T === 0) return out;
  const n = T * k;
  const logits = ctx.own(linears.linear(xt, w.router));
  const r = routeAndGroup(ctx, logits.ptr, T, E, spec);
  const act = ctx.empty([n, I]);
  const d = ctx.empty([n, H]);
  const down = cuda(w.down).ptr;
  if (moeTakesGemv(ctx.dtype, T, H, I)) {
    const grouped = { offsets: r.offsets, pairs: r.pairs, active: r.active };
    const blocksY = Math.min(n, E);
    groupedGemv(ctx, T, blocksY, true, { y: act.ptr, x: xt.ptr, w: gateUp.ptr, ...grouped, n: I, k: H, gatherK: k });
    groupedGemv(ctx, T, blocksY, false, { y: d.ptr, x: act.ptr, w: down, ...grouped, n: H, k: I, gatherK: 0 });
  } else {
    const gu = ctx.empty([n, 2 * I]);
    const grouped = { offsets: r.offsets, pairs: r.pairs, rows: n, experts: E };
    groupedGemm(ctx, { y: gu.ptr, x: xt.ptr, w: gateUp.ptr, ...grouped, n: 2 * I, k: H, gatherK: k });
    actMulInto(ctx, act.ptr, gu.ptr, n, I, 'silu');
    groupedGemm(ctx, { y: d.ptr, x: act.ptr, w: down, ...grouped, n: H, k: I, gatherK: 0 });
  }
  let shared = 0n;
  let sharedGate = 0n;
  if (w.shared) {
    const s = w.shared;
    const act = linears.linearActMul(xt, s.gateUp, undefined, 'silu', linears.inputForm(xt, s.down));
    shared = ctx.own(linears.linear(act, s.down)).ptr;
    if (s.gate) sharedGate = ctx.own(linears.linear(xt, s.gate)).ptr;
  }
  ctx.kernel(MOE_COMBINE).launch(ctx.grid1d(T * H), [256], {
    out: out.ptr,
    d: d.ptr,
    pos: r.pos,
    weights: r.weights,
    s: shared,
    sharedGate,
    tokens: T,
    hidden: H,
    k,
  });
  return out;
}

/**
 * kernels/moe_gemv.cu over `T` tokens' grouped rows: a block per (entry of the active list, `blocksY` of them; tile
 * of output features). SPLIT (warps sharing a weight row group, interleaved over K) is the largest of 8, 4, 2 that
 * leaves every lane at least two 16-byte loads a row: K 2,048 in bf16 (256 vectors) takes 4, K 768 (96) takes 1; at
 * one row the dense GEMV measured split 8 best for K 4,096 (gemv-config.ts), which this rule also picks.
 */
function groupedGemv(
  ctx: CudaContext,
  T: number,
  blocksY: number,
  gated: boolean,
  a: ArgValues<typeof MOE_GEMV.args>,
): void {
  const defines = moeGemvDefines(ctx.dtype, T, a.k, gated);
  const groups = gated ? a.n : Math.ceil(a.n / GEMV_ROWS);
  const grid: [number, number] = [Math.ceil((groups * defines.SPLIT) / GEMV_WARPS), blocksY];
  ctx.kernel(MOE_GEMV, defines).launch(grid, [32 * GEMV_WARPS], a);
}

/** kernels/moe_gemv.cu's build for `T` tokens over inputs of `k` (SPLIT: see groupedGemv). */
export function moeGemvDefines(dtype: DType, T: number, k: number, gated: boolean) {
  const kv = k / (16 / DTYPE_BYTES[dtype]);
  const split = [8, 4, 2].find((s) => kv >= 64 * s) ?? 1;
  return { TMAX: 2 ** Math.ceil(Math.log2(T)), SPLIT: split, ...(gated ? { GATED: 1 } : {}) };
}

/** Whether `T` tokens' experts (hidden `H`, expert width `I`) take moe_gemv: a decode step's, whole 16-byte loads. */
export function moeTakesGemv(dtype: DType, T: number, H: number, I: number): boolean {
  const vector = 16 / DTYPE_BYTES[dtype];
  return T <= MOE_GEMV_MAX_TOKENS && H % vector === 0 && I % vector === 0;
}

/** The grouped GEMM over inputs of `k`: on tensor cores in 16-bit storage when k is whole 16-byte loads. */
export function groupedGemmKernel(dtype: DType, k: number): typeof MOE_GEMM_MMA | typeof MOE_GEMM {
  return k % (16 / DTYPE_BYTES[dtype]) === 0 && dtype !== 'f32' ? MOE_GEMM_MMA : MOE_GEMM;
}

/**
 * y[r] = x[src(r)] w[expert(r)]^T over the grouped rows past a decode step: the tensor-core GEMM in 16-bit storage
 * when k is a whole number of its 16-byte loads, else the tile kernel. The choice depends on the row count alone, so
 * captured graphs stay valid.
 */
function groupedGemm(ctx: CudaContext, a: ArgValues<typeof MOE_GEMM.args>): void {
  if (groupedGemmKernel(ctx.dtype, a.k) === MOE_GEMM_MMA) {
    ctx.kernel(MOE_GEMM_MMA).launch([Math.ceil(a.n / MMA_TILE), Math.ceil(a.rows / MMA_TILE) + a.experts], [128], a);
  } else {
    ctx.kernel(MOE_GEMM).launch([Math.ceil(a.n / TILE_COLS), Math.ceil(a.rows / TILE_ROWS) + a.experts], [256], a);
  }
}
