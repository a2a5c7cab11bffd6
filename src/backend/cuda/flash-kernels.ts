/**
 * The tensor-core attention kernels' declarations (kernels/flash_prefill.cu, kernels/flash_prefill_sm90a.cu,
 * kernels/paged_decode.cu).
 */
import { type ArgList, declareKernel, type KernelDecl } from './kernel.ts';

/** The head sizes the tensor-core kernels are built for. */
export const HEAD_DIMS = [64, 80, 96, 128, 256] as const;

/** A kernel the .cu instantiates once per head size of `dims` (`flash_prefill_hd64`, `flash_prefill_hd128`, ...). */
function perHeadDim<const A extends ArgList, const D extends readonly number[] = typeof HEAD_DIMS>(
  file: string,
  prefix: string,
  args: A,
  dims: D = HEAD_DIMS as unknown as D,
): Record<D[number], KernelDecl<A>> {
  return Object.fromEntries(dims.map((d) => [d, declareKernel(file, `${prefix}${d}`, args)])) as Record<
    D[number],
    KernelDecl<A>
  >;
}

/** The arguments both prefill kernels take, in their order (flash_prefill.cu adds soft-capping and cache scales). */
const PREFILL_ARGS = {
  q: 'ptr',
  qStride: 'i32',
  kCache: 'ptr',
  vCache: 'ptr',
  blockTables: 'ptr',
  maxBlocksPerSeq: 'i32',
  contextLens: 'ptr',
  cuSeqlensQ: 'ptr',
  out: 'ptr',
  oStride: 'i32',
  lse: 'ptr',
  numHeads: 'i32',
  numKvHeads: 'i32',
  blockSizeLog2: 'i32',
  scaleLog2: 'f32',
  slidingWindow: 'i32',
} as const;

/** kernels/flash_prefill.cu (PAGODA_FLASH_PREFILL(D)): grid (KV heads, sequences, query-row tiles). */
export const FLASH_PREFILL = perHeadDim('flash_prefill', 'flash_prefill_hd', {
  ...PREFILL_ARGS,
  softcap: 'f32',
  kScales: 'ptr',
  vScales: 'ptr',
  kScale: 'f32',
  vScale: 'f32',
});
/** kernels/paged_decode.cu (PAGODA_PAGED_DECODE(D)): grid (splits, KV heads x head groups, sequences). */
export const PAGED_DECODE = perHeadDim('paged_decode', 'paged_decode_hd', {
  q: 'ptr',
  qStride: 'i32',
  kCache: 'ptr',
  vCache: 'ptr',
  blockTables: 'ptr',
  maxBlocksPerSeq: 'i32',
  contextLens: 'ptr',
  out: 'ptr',
  oStride: 'i32',
  lse: 'ptr',
  partialO: 'ptr',
  partialLse: 'ptr',
  numHeads: 'i32',
  numKvHeads: 'i32',
  blockSizeLog2: 'i32',
  scaleLog2: 'f32',
  slidingWindow: 'i32',
  softcap: 'f32',
  kScales: 'ptr',
  vScales: 'ptr',
  kScale: 'f32',
  vScale: 'f32',
  xq: 'ptr',
  xs: 'ptr',
});
/**
 * kernels/paged_decode_merge.cu: paged_decode's split partials combined by LSE: grid (heads, sequences), head_dim
 * threads. Both kernels' XQ builds also write O as q8 groups at xq / xs (x-form.ts; null in the plain build).
 */
export const PAGED_DECODE_MERGE = declareKernel('paged_decode_merge', 'paged_decode_merge', {
  partialO: 'ptr',
  partialLse: 'ptr',
  out: 'ptr',
  oStride: 'i32',
  lse: 'ptr',
  numHeads: 'i32',
  numSplits: 'i32',
  headDim: 'i32',
  xq: 'ptr',
  xs: 'ptr',
});
/** The head sizes kernels/flash_prefill_sm90a.cu (Hopper only) is built for. */
export const SM90A_HEAD_DIMS = [64, 128, 256] as const;
/**
 * kernels/flash_prefill_sm90a.cu (PAGODA_FLASH_PREFILL_SM90A(D)), built for sm_90a: grid (KV heads, sequences,
 * 128-row tiles), three warpgroups.
 */
export const FLASH_PREFILL_SM90A = perHeadDim(
  'flash_prefill_sm90a',
  'flash_prefill_sm90a_hd',
  PREFILL_ARGS,
  SM90A_HEAD_DIMS,
);
