/**
 * The tensor-core attention kernels' declarations (kernels/flash_prefill.cu, kernels/flash_prefill_sm90a.cu,
 * kernels/paged_decode.cu).
 */
import { type ArgList, declareKernel } from './kernel.ts';

/** The head sizes the tensor-core kernels are built for. */
export const HEAD_DIMS = [64, 80, 96, 128, 256] as const;

/** A kernel the .cu instantiates once per head size (`flash_prefill_hd64`, `flash_prefill_hd128`, ...). */
function perHeadDim<const A extends ArgList>(file: string, prefix: string, args: A) {
  return {
    64: declareKernel(file, `${prefix}64`, args),
    80: declareKernel(file, `${prefix}80`, args),
    96: declareKernel(file, `${prefix}96`, args),
    128: declareKernel(file, `${prefix}128`, args),
    256: declareKernel(file, `${prefix}256`, args),
  };
}

/** kernels/flash_prefill.cu (PAGODA_FLASH_PREFILL(D)): grid (KV heads, sequences, query-row tiles). */
export const FLASH_PREFILL = perHeadDim('flash_prefill', 'flash_prefill_hd', {
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
});
/** Combines paged_decode's split partials by LSE: grid (heads, sequences), head_dim threads. */
export const PAGED_DECODE_MERGE = declareKernel('paged_decode', 'paged_decode_merge', {
  partialO: 'ptr',
  partialLse: 'ptr',
  out: 'ptr',
  oStride: 'i32',
  lse: 'ptr',
  numHeads: 'i32',
  numSplits: 'i32',
  headDim: 'i32',
});
/** The head sizes kernels/flash_prefill_sm90a.cu (Hopper only) is built for. */
export const SM90A_HEAD_DIMS = [64, 128, 256] as const;
const sm90aArgs = {
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
/**
 * kernels/flash_prefill_sm90a.cu (PAGODA_FLASH_PREFILL_SM90A(D)), built for sm_90a: grid (KV heads, sequences,
 * 128-row tiles), three warpgroups.
 */
export const FLASH_PREFILL_SM90A = {
  64: declareKernel('flash_prefill_sm90a', 'flash_prefill_sm90a_hd64', sm90aArgs),
  128: declareKernel('flash_prefill_sm90a', 'flash_prefill_sm90a_hd128', sm90aArgs),
  256: declareKernel('flash_prefill_sm90a', 'flash_prefill_sm90a_hd256', sm90aArgs),
};
