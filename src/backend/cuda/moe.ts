import type { MoeSpec, MoeWeights, Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import { actMulInto } from './elementwise.ts';
import { type ArgValues, declareKernel } from './kernel.ts';
import type { CudaLinear } from './linear.ts';
import { cuda, DTYPE_BYTES, rowsCols } from './tensor.ts';

// kernels/moe.cu
export const MOE_ROUTE = declareKernel('moe', 'moe_route', {
  ids: 'ptr',
  weights: 'ptr',
  logits: 'ptr',
  tokens: 'i32',
  experts: 'i32',
  k: 'i32',
  norm: 'i32',
});
export const MOE_GROUP = declareKernel('moe', 'moe_group', {
  offsets: 'ptr',
  pairs: 'ptr',
  pos: 'ptr',
  ids: 'ptr',
  n: 'i32',
  experts: 'i32',
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
/** The grouped GEMV for few rows: moe_gemm's arguments. */
export const MOE_GEMV = declareKernel('moe', 'moe_gemv', MOE_GEMM.args);
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
 * Grouped rows (tokens x top-k) up to which moe_gemv runs instead of the tile kernel: a decode step of up to 8 tokens at
 * top-8. Each row reads its expert's weights once, so past a few rows per expert the tiles' weight reuse wins.
 */
const GEMV_MAX_ROWS = 64;
/** Output columns per moe_gemv block (MOE_GEMV_WARPS x MOE_GEMV_COLS in kernels/moe.cu). */
const GEMV_BLOCK_COLS = 16;
/** moe_gemm_mma's tile (MMA_BM x MMA_BN, MMA_WARPS warps, in kernels/moe_mma.cu). */
const MMA_TILE = 64;

/**
 * The mixture-of-experts block (`Backend.moe`): router logits by the linear layer, then kernels/moe.cu: top-k
 * routing, the (token, slot) pairs grouped by expert, one grouped GEMM launch for every expert's gate/up and one for
 * down (each tile reading only its own expert's weights, so a decode step reads just the chosen experts; a grouped
 * GEMV for a decode step's few rows), and a
 * combine that applies the routing weights and adds the shared expert. Launch shapes depend on the token count
 * alone, so decode steps capture into graphs.
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
  const ints = (count: number) => ctx.arena.alloc(count * 4);
  const [ids, routing, offsets, pairs, pos] = [ints(n), ints(n), ints(E + 1), ints(n), ints(n)];
  ctx.kernel(MOE_ROUTE).launch([Math.ceil(T / 128)], [128], {
    ids,
    weights: routing,
    logits: logits.ptr,
    tokens: T,
    experts: E,
    k,
    norm: spec.normTopK ? 1 : 0,
  });
  ctx
    .kernel(MOE_GROUP)
    .launch([1], [Math.min(MAX_EXPERTS, Math.ceil(E / 32) * 32)], { offsets, pairs, pos, ids, n, experts: E });
  const gu = ctx.empty([n, 2 * I]);
  groupedLinear(ctx, {
    y: gu.ptr,
    x: xt.ptr,
    w: gateUp.ptr,
    offsets,
    pairs,
    rows: n,
    experts: E,
    n: 2 * I,
    k: H,
    gatherK: k,
  });
  const act = ctx.empty([n, I]);
  actMulInto(ctx, act.ptr, gu.ptr, n, I, 'silu');
  const d = ctx.empty([n, H]);
  groupedLinear(ctx, {
    y: d.ptr,
    x: act.ptr,
    w: cuda(w.down).ptr,
    offsets,
    pairs,
    rows: n,
    experts: E,
    n: H,
    k: I,
    gatherK: 0,
  });
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
    pos,
    weights: routing,
    s: shared,
    sharedGate,
    tokens: T,
    hidden: H,
    k,
  });
  return out;
}

/**
 * y[r] = x[src(r)] w[expert(r)]^T over the grouped rows: the grouped GEMV for a decode step's few rows, the tensor-core
 * GEMM for more in 16-bit storage, each when k is a whole number of their 16-byte loads; else the tile kernel. The
 * choice depends on the row count alone, so captured graphs stay valid.
 */
function groupedLinear(ctx: CudaContext, a: ArgValues<typeof MOE_GEMM.args>): void {
  const vector = 16 / DTYPE_BYTES[ctx.dtype];
  if (a.k % vector === 0 && a.rows <= GEMV_MAX_ROWS) {
    ctx.kernel(MOE_GEMV).launch([Math.ceil(a.n / GEMV_BLOCK_COLS), a.rows], [256], a);
  } else if (a.k % vector === 0 && ctx.dtype !== 'f32') {
    ctx.kernel(MOE_GEMM_MMA).launch([Math.ceil(a.n / MMA_TILE), Math.ceil(a.rows / MMA_TILE) + a.experts], [128], a);
  } else {
    ctx.kernel(MOE_GEMM).launch([Math.ceil(a.n / TILE_COLS), Math.ceil(a.rows / TILE_ROWS) + a.experts], [256], a);
  }
}
