import type { DType, Tensor } from '../backend.ts';
import type { MoeSpec, MoeWeights } from '../moe-spec.ts';
import type { CudaContext } from './context.ts';
import { actMulInto } from './elementwise.ts';
import { type ArgValues, declareKernel } from './kernel.ts';
import type { CudaLinear } from './linear.ts';
import { expertValues, quantExperts, quantMoeGemv, takesQuantGemv } from './moe-quant.ts';
import { launchCounters, MAX_EXPERTS, MOE_GEMV_MAX_TOKENS, routeTokens } from './moe-routing.ts';
import type { QuantCudaTensor } from './quant-tensor.ts';
import { cuda, DTYPE_BYTES, rowsCols } from './tensor.ts';

// kernels/moe.cu
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
const COMBINE_ARGS = { pos: 'ptr', weights: 'ptr', s: 'ptr', sharedGate: 'ptr' } as const;
export const MOE_COMBINE = declareKernel('moe', 'moe_combine', {
  out: 'ptr',
  d: 'ptr',
  ...COMBINE_ARGS,
  tokens: 'i32',
  hidden: 'i32',
  k: 'i32',
});
/** kernels/moe_gemv.cu: the down projection's moe_gemv with moe_combine in its last blocks (`done`: launchCounters). */
export const MOE_DOWN_COMBINE = declareKernel('moe_gemv', 'moe_down_combine', {
  out: 'ptr',
  d: 'ptr',
  x: 'ptr',
  w: 'ptr',
  offsets: 'ptr',
  pairs: 'ptr',
  active: 'ptr',
  ...COMBINE_ARGS,
  done: 'ptr',
  tokens: 'i32',
  n: 'i32',
  k: 'i32',
  topK: 'i32',
});

/** Tile of the grouped GEMM (MOE_BM x MOE_BN in kernels/moe.cu). */
const TILE_ROWS = 32;
const TILE_COLS = 64;
/** moe_gemv's warps per block (WARPS) and weight rows per warp group when not gated (ROWS). */
const GEMV_WARPS = 8;
const GEMV_ROWS = 2;
/** moe_gemm_mma's tile columns (MMA_BN in kernels/moe_mma.cu). */
const MMA_COLS = 64;

/**
 * The mixture-of-experts block (`Backend.moe`): router logits, top-k routing and the (token, slot) pairs grouped by
 * expert (moe-routing.ts); the shared expert by the linear layer; the experts' gate/up and down projections over the
 * grouped rows, each reading only the chosen experts' weights: for a decode step's few tokens kernels/moe_gemv.cu (the
 * whole grid streaming every chosen expert at once, act(gate) * up written by the first, the combine by the last
 * blocks of the second), else one grouped GEMM launch per projection, the activation between and a combine that
 * applies the routing weights and adds the shared expert. Experts kept in GGUF blocks (`[E · R, cols]`) take
 * moe-quant.ts's GEMV over their blocks for a decode step (16-bit compute), and otherwise the same float kernels over
 * the chosen experts dequantized into the expert scratch. Launch shapes depend on the token count alone, so decode
 * steps capture into graphs.
 */
export function moe(ctx: CudaContext, linears: CudaLinear, x: Tensor, w: MoeWeights, spec: MoeSpec): Tensor {
  const xt = ctx.own(x);
  const [T, H] = rowsCols(xt);
  // The experts' count from the router `[E, H]`; their widths from the stacks (2-D when kept in blocks).
  const E = w.router.shape[0]!;
  const [gateUpQ, downQ] = [quantExperts(w.gateUp), quantExperts(w.down)];
  const size = (t: Tensor) => t.shape.reduce((a, d) => a * d, 1);
  const I = size(w.gateUp) / H / E / 2;
  if (!Number.isInteger(I) || w.gateUp.shape.at(-1) !== H || size(w.down) !== E * H * I || w.down.shape.at(-1) !== I) {
    throw new Error(
      `moe: router [${w.router.shape}], gate/up [${w.gateUp.shape}], down [${w.down.shape}] do not agree`,
    );
  }
  const k = spec.topK;
  if (E > MAX_EXPERTS) throw new Error(`moe: ${E} experts, the CUDA kernels handle at most ${MAX_EXPERTS}`);
  if (!Number.isInteger(k) || k < 1 || k > E) throw new Error(`moe: top-k ${k} outside 1..${E} experts`);
  const out = ctx.empty([T, H]);
  if (T === 0) return out;
  const n = T * k;
  const r = routeTokens(ctx, linears, xt, w.router, E, spec);
  // The shared expert first: the decode path's down projection combines it in.
  let s = 0n;
  let sharedGate = 0n;
  if (w.shared) {
    const sw = w.shared;
    const act = linears.linearActMul(xt, sw.gateUp, undefined, 'silu', linears.inputForm(xt, sw.down));
    s = ctx.own(linears.linear(act, sw.down)).ptr;
    if (sw.gate) sharedGate = ctx.own(linears.linear(xt, sw.gate)).ptr;
  }
  const combine = { pos: r.pos, weights: r.weights, s, sharedGate };
  const act = ctx.empty([n, I]);
  const d = ctx.empty([n, H]);
  // A stack kept in blocks as values in the expert scratch (its chosen experts): what the float kernels read.
  const valuesOf = (stack: Tensor, q: QuantCudaTensor | null) =>
    q ? expertValues(ctx, q, E, r.offsets, linears.quant.experts) : cuda(stack).ptr;
  if (moeTakesGemv(ctx.dtype, T, H, I)) {
    const grouped = { offsets: r.offsets, pairs: r.pairs, active: r.active };
    const blocksY = Math.min(n, E);
    const quantGrid = { experts: E, tokens: T, blocksY };
    if (takesQuantGemv(ctx, gateUpQ)) {
      quantMoeGemv(ctx, act.ptr, xt, gateUpQ, r, { ...quantGrid, gated: true, gatherK: k });
    } else {
      const gu = moeGemvLaunch(ctx.dtype, T, blocksY, I, H, true);
      const up = { y: act.ptr, x: xt.ptr, w: valuesOf(w.gateUp, gateUpQ), ...grouped, n: I, k: H, gatherK: k };
      ctx.kernel(MOE_GEMV, gu.defines).launch(gu.grid, gu.block, up);
    }
    if (takesQuantGemv(ctx, downQ)) {
      quantMoeGemv(ctx, d.ptr, act, downQ, r, { ...quantGrid, gated: false, gatherK: 0 });
      ctx
        .kernel(MOE_COMBINE)
        .launch(ctx.grid1d(T * H), [256], { out: out.ptr, d: d.ptr, ...combine, tokens: T, hidden: H, k });
      return out;
    }
    const down = valuesOf(w.down, downQ);
    const dn = moeGemvLaunch(ctx.dtype, T, blocksY, H, I, false);
    const done = launchCounters(ctx, dn.grid[0]);
    ctx.kernel(MOE_DOWN_COMBINE, dn.defines).launch(dn.grid, dn.block, {
      out: out.ptr,
      d: d.ptr,
      x: act.ptr,
      w: down,
      ...grouped,
      ...combine,
      done,
      tokens: T,
      n: H,
      k: I,
      topK: k,
    });
    return out;
  }
  const gu = ctx.empty([n, 2 * I]);
  const grouped = { offsets: r.offsets, pairs: r.pairs, rows: n, experts: E };
  groupedGemm(ctx, { y: gu.ptr, x: xt.ptr, w: valuesOf(w.gateUp, gateUpQ), ...grouped, n: 2 * I, k: H, gatherK: k });
  actMulInto(ctx, act.ptr, gu.ptr, n, I, 'silu');
  // The scratch is free again once the gate/up GEMM has read it (one stream): the down stack's values go there.
  groupedGemm(ctx, { y: d.ptr, x: act.ptr, w: valuesOf(w.down, downQ), ...grouped, n: H, k: I, gatherK: 0 });
  const combined = { out: out.ptr, d: d.ptr, ...combine, tokens: T, hidden: H, k };
  ctx.kernel(MOE_COMBINE).launch(ctx.grid1d(T * H), [256], combined);
  return out;
}

/**
 * kernels/moe_gemv.cu's build and grid over `T` tokens' grouped rows, `n` outputs over inputs of `k`: a block per
 * (tile of output features, entry of the active list: `blocksY` of them). SPLIT (warps sharing a weight row group,
 * interleaved over K) is the largest of 8, 4, 2 that leaves every lane at least two 16-byte loads a row: K 2,048 in
 * bf16 (256 vectors) takes 4, K 768 (96) takes 1; at one row the dense GEMV measured split 8 best for K 4,096
 * (gemv-config.ts), which this rule also picks.
 */
export function moeGemvLaunch(dtype: DType, T: number, blocksY: number, n: number, k: number, gated: boolean) {
  const defines = moeGemvDefines(dtype, T, k, gated);
  const groups = gated ? n : Math.ceil(n / GEMV_ROWS);
  const grid: [number, number] = [Math.ceil((groups * defines.SPLIT) / GEMV_WARPS), blocksY];
  return { defines, grid, block: [32 * GEMV_WARPS] as [number] };
}

/** kernels/moe_gemv.cu's build for `T` tokens over inputs of `k` (SPLIT: see moeGemvLaunch). */
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
 * kernels/moe_mma.cu's build for `rows` grouped rows over `experts`: 16-row tiles four stages deep where the experts
 * average at most 16 rows (a large decode step: 256 tokens at top-8 of 128), else 64-row tiles two deep.
 */
export function mmaTileBuild(rows: number, experts: number): (typeof MMA_TILE_BUILDS)[number] {
  return MMA_TILE_BUILDS[rows <= 16 * experts ? 0 : 1];
}

/** kernels/moe_mma.cu's builds: mmaTileBuild's choice. */
export const MMA_TILE_BUILDS = [
  { MMA_BM: 16, MMA_STAGES: 4 },
  { MMA_BM: 64, MMA_STAGES: 2 },
] as const;

/**
 * y[r] = x[src(r)] w[expert(r)]^T over the grouped rows past a decode step: the tensor-core GEMM in 16-bit storage
 * when k is a whole number of its 16-byte loads (in `build`, mmaTileBuild's unless a test names one), else the tile
 * kernel. The choice depends on the row count alone, so captured graphs stay valid.
 */
export function groupedGemm(
  ctx: CudaContext,
  a: ArgValues<typeof MOE_GEMM.args>,
  build: (typeof MMA_TILE_BUILDS)[number] = mmaTileBuild(a.rows, a.experts),
): void {
  if (groupedGemmKernel(ctx.dtype, a.k) === MOE_GEMM_MMA) {
    const grid = [Math.ceil(a.n / MMA_COLS), Math.ceil(a.rows / build.MMA_BM) + a.experts] as [number, number];
    ctx.kernel(MOE_GEMM_MMA, build).launch(grid, [128], a);
  } else {
    ctx.kernel(MOE_GEMM).launch([Math.ceil(a.n / TILE_COLS), Math.ceil(a.rows / TILE_ROWS) + a.experts], [256], a);
  }
}
