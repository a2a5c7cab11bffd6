import { ggmlTypeOf, type QuantType } from '../../primitives/ggml-types.ts';
import type { DType } from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { declareKernel } from './kernel.ts';
import { QTYPE } from './quant-kernels.ts';
import { QUANT_GEMV_MAX_ROWS, type QuantCudaPart, type QuantCudaTensor } from './quant-tensor.ts';
import { DTYPE_BYTES, DTYPE_DEFINE } from './tensor.ts';

/**
 * The quantized linear past the decode GEMV's rows (kernels/quant_gemm.cu): 'fused' decodes each weight tile once
 * per CTA into shared memory and multiplies it on tensor cores there; 'dequantize' writes the weight in 16 bits into
 * the scratch for cuBLASLt (quant-linear.ts). CudaSettings.quantGemm (PAGODA_QUANT_GEMM) picks; 'fused' serves only
 * the weights `quantGemmServes` says.
 */
export type QuantGemmRoute = 'fused' | 'dequantize';
export const QUANT_GEMM_ROUTES: readonly QuantGemmRoute[] = ['fused', 'dequantize'];

/** The block types the fused GEMM decodes (Q4_K_M's q4_k and q6_k, Q5_K_M's q5_k, Q8_0). */
export const QUANT_GEMM_TYPES: readonly QuantType[] = ['q8_0', 'q4_k', 'q5_k', 'q6_k'];

/**
 * Rows of x up to which the fused route runs (past the GEMV's). On an H100 (bench/quant-gemv.ts --fused-only) it
 * beats dequantize + cuBLASLt on every Llama-3-8B shape at 16 rows (1.4-2.7x) and 64 (1.05-1.7x), but not at 128
 * (q/k/v 0.73x, o 0.81x) nor past it (0.4-0.8x at 256-512: mma.sync against cuBLASLt's Hopper GEMM, and each
 * 128-256-row tile decodes the weight again); the offline run with it up to 512 rows lost 11 %.
 */
export const QUANT_GEMM_MAX_ROWS = 64;

/** Output features per CTA (QG_BN), threads per CTA, values per K step and per raw run (kernels/quant_gemm.cu). */
const BN = 128;
const THREADS = 256;
const BK = 64;
const RUN = 256;
/** The most K splits; a split is at least one 256-value run. */
const MAX_SPLIT = 8;
/** Shared memory an SM has for its CTAs (an H100's 228 KB less the 1 KB per CTA the driver reserves is the cap). */
const SM_SHARED = 228 * 1024;

/** The row tiles (quant_gemm_m16 .. _m256) and their kernels. */
export const QUANT_GEMM_TILES = [16, 32, 64, 128, 256] as const;
export type QuantGemmTile = (typeof QUANT_GEMM_TILES)[number];
const GEMM_ARGS = {
  y: 'ptr',
  ws: 'ptr',
  x: 'ptr',
  w: 'ptr',
  rows: 'i32',
  n: 'i32',
  k: 'i32',
  rowBytes: 'i64',
  ldy: 'i32',
  split: 'i32',
} as const;
export const QUANT_GEMM = {
  16: declareKernel('quant_gemm', 'quant_gemm_m16', GEMM_ARGS),
  32: declareKernel('quant_gemm', 'quant_gemm_m32', GEMM_ARGS),
  64: declareKernel('quant_gemm', 'quant_gemm_m64', GEMM_ARGS),
  128: declareKernel('quant_gemm', 'quant_gemm_m128', GEMM_ARGS),
  256: declareKernel('quant_gemm', 'quant_gemm_m256', GEMM_ARGS),
};
export const QUANT_GEMM_REDUCE = declareKernel('quant_gemm', 'quant_gemm_reduce', {
  y: 'ptr',
  ws: 'ptr',
  rows: 'i32',
  n: 'i32',
  ldy: 'i32',
  split: 'i32',
});

/** Whether the fused GEMM decodes `type` at `k` inputs in `dtype` compute (16-bit operands; whole 256-value runs). */
export function quantGemmCovers(type: QuantType, k: number, dtype: DType): boolean {
  return dtype !== 'f32' && QUANT_GEMM_TYPES.includes(type) && k % RUN === 0;
}

/** Whether a linear of `rows` rows over `w` takes the fused GEMM on `route` (every part covered, else none). */
export function quantGemmServes(route: QuantGemmRoute, rows: number, w: QuantCudaTensor, dtype: DType): boolean {
  if (route !== 'fused' || rows <= QUANT_GEMV_MAX_ROWS || rows > QUANT_GEMM_MAX_ROWS) return false;
  return w.parts.every((p) => quantGemmCovers(p.type, w.shape[1], dtype));
}

/** The row tile for `rows` rows: the smallest that holds them, else 256-row tiles. */
export function quantGemmTile(rows: number): QuantGemmTile {
  return QUANT_GEMM_TILES.find((t) => t >= rows) ?? 256;
}

/**
 * Dynamic shared memory of a build (kernels/quant_gemm.cu's layout): three x stages and two decoded tiles of 144-byte
 * rows, two raw runs per weight row (whole 16-byte chunks covering the run from any offset its blocks' alignment
 * allows, an odd number of them a row), 16 bytes of slack.
 */
export function quantGemmSharedBytes(type: QuantType, tile: QuantGemmTile): number {
  const { blockSize, typeSize } = ggmlTypeOf(type);
  const runBytes = (RUN / blockSize) * typeSize;
  const align = [16, 8, 4].find((a) => typeSize % a === 0) ?? 2;
  const chunks = Math.ceil((runBytes + (align < 16 ? 16 - align : 0)) / 16);
  return 2 * (3 * tile + 2 * BN) * (BK + 8) + 2 * BN * 16 * (chunks | 1) + 16;
}

/** A launch of the fused GEMM over one part: its row tile, tiles of x's rows and of the part's features, K splits. */
export interface QuantGemmPlan {
  tile: QuantGemmTile;
  rowTiles: number;
  featureTiles: number;
  split: number;
  sharedBytes: number;
}

/**
 * How `rows` rows of x meet an `n` x `k` part of `type` on `smCount` SMs. Past 128 rows, a weight of few feature
 * tiles takes 128-row tiles (twice the CTAs, each decoding the weight again) while its CTAs fill less than a wave.
 * A grid under half the SMs' CTA slots splits K, as many ways as fill them (at most 8, a split at least one run):
 * what stays under half a wave is decode rows and a few tiles (o, down, q/k/v at 9-64 rows), whose partials are
 * small; a larger grid splits nothing (the partials' traffic would cost what the split wins).
 */
export function quantGemmPlan(rows: number, n: number, k: number, type: QuantType, smCount: number): QuantGemmPlan {
  const featureTiles = Math.ceil(n / BN);
  let tile = quantGemmTile(rows);
  if (tile === 256 && featureTiles * Math.ceil(rows / 128) <= smCount) tile = 128;
  const rowTiles = Math.ceil(rows / tile);
  const sharedBytes = quantGemmSharedBytes(type, tile);
  // The 128- and 256-row builds hold 64-128 accumulators a thread: one CTA an SM; the small ones up to two.
  const perSm = Math.min(tile >= 128 ? 1 : 2, Math.floor(SM_SHARED / (sharedBytes + 1024)));
  const slots = smCount * perSm;
  const ctas = featureTiles * rowTiles;
  const split = 2 * ctas <= slots ? Math.max(1, Math.min(MAX_SPLIT, k / RUN, Math.floor(slots / ctas))) : 1;
  return { tile, rowTiles, featureTiles, split, sharedBytes };
}

/** The split partials' fp32 bytes of a plan: split x rows x n, none unsplit. */
export const quantGemmPartialBytes = (plan: QuantGemmPlan, rows: number, n: number): number =>
  plan.split > 1 ? plan.split * rows * n * 4 : 0;

/** The workspace the fused GEMM needs for an `n` x `k` part: the largest split partials at any row count it serves. */
export function quantGemmWorkspaceBytes(n: number, k: number, type: QuantType, smCount: number): number {
  let most = 0;
  for (let rows = QUANT_GEMV_MAX_ROWS + 1; rows <= QUANT_GEMM_MAX_ROWS; rows++)
    most = Math.max(most, quantGemmPartialBytes(quantGemmPlan(rows, n, k, type, smCount), rows, n));
  return most;
}

/**
 * y[t, c] (rows `ldy` apart) = sum_j x[t, j] w[c, j] for t < rows and the part's rows c: the part of a stacked weight
 * whose first output column y points at (bias the caller's). `ws` holds the split partials in its `wsBytes` bytes
 * (quantGemmWorkspaceBytes); `force` overrides the plan's row tile or split (tests: every build, splits the plan would
 * not take).
 */
export function quantGemmPart(
  ctx: CudaContext,
  y: DevPtr,
  ldy: number,
  x: DevPtr,
  rows: number,
  k: number,
  p: QuantCudaPart,
  ws: { ptr: DevPtr; bytes: number },
  force: { tile?: QuantGemmTile; split?: number } = {},
): void {
  const plan = quantGemmPlan(rows, p.rows, k, p.type, ctx.drv.info.smCount);
  const tile = force.tile ?? plan.tile;
  const split = force.split ?? plan.split;
  if (split < 1 || split > k / RUN) throw new Error(`quant_gemm: split ${split} of ${k / RUN} runs`);
  const partials = split > 1 ? split * rows * p.rows * 4 : 0;
  if (partials > ws.bytes)
    throw new Error(`quant_gemm: ${partials} bytes of split partials, a ${ws.bytes}-byte workspace`);
  const sharedBytes = quantGemmSharedBytes(p.type, tile);
  const defines = { PAGODA_DTYPE: DTYPE_DEFINE[ctx.dtype], QTYPE: QTYPE[p.type] };
  const args = { y, ws: ws.ptr, x, w: p.ptr, rows, n: p.rows, k, rowBytes: p.rowBytes, ldy, split };
  ctx.mods
    .get(QUANT_GEMM[tile], defines, sharedBytes)
    .launch([plan.featureTiles * split, Math.ceil(rows / tile)], [THREADS], args, sharedBytes);
  if (split === 1) return;
  ctx.mods
    .get(QUANT_GEMM_REDUCE, defines)
    .launch([Math.ceil(p.rows / THREADS), rows], [THREADS], { y, ws: ws.ptr, rows, n: p.rows, ldy, split });
}

/** out[T, m] = x w^T by the fused GEMM, each part into its columns; `ws` as quantGemmPart's. */
export function quantGemm(
  ctx: CudaContext,
  out: DevPtr,
  x: DevPtr,
  T: number,
  w: QuantCudaTensor,
  ws: { ptr: DevPtr; bytes: number },
) {
  const size = DTYPE_BYTES[ctx.dtype];
  const firsts = w.firstRows;
  w.parts.forEach((p, i) => {
    quantGemmPart(ctx, out + BigInt(firsts[i]! * size), w.shape[0], x, T, w.shape[1], p, ws);
  });
}
