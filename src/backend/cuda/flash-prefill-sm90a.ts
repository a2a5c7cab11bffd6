/**
 * The Hopper prefill kernel (kernels/flash_prefill_sm90a.cu: wgmma, a producer warpgroup and two consumers, built for
 * sm_90a only): which calls it serves, its build and its launch. FlashAttention.prefill sends a call here when its
 * prefill kernel is 'wgmma' (CudaSettings.prefillKernel), the device is compute capability 9.0 and the kernel covers
 * the call; everything else (soft-capping, quantized caches, head sizes 80 and 96, other cards) stays on
 * flash_prefill.cu's mma.sync kernel.
 */

import type { AttentionDtype, AttentionRuntime, PagedAttentionArgs } from './flash-attention.ts';
import { FLASH_PREFILL_SM90A, SM90A_HEAD_DIMS } from './flash-kernels.ts';
import { SM90A_PREFILL, type Sm90aPrefillConfig, sm90aPrefillConfig, sm90aPrefillSharedBytes } from './flash-sizing.ts';
import { DTYPE_DEFINE } from './tensor.ts';

/** The prefill kernels: flash_prefill.cu (mma.sync, every card) or flash_prefill_sm90a.cu (wgmma, Hopper). */
export type PrefillKernel = 'mma' | 'wgmma';
export const PREFILL_KERNELS: readonly PrefillKernel[] = ['mma', 'wgmma'];

type Sm90aHeadDim = (typeof SM90A_HEAD_DIMS)[number];

/** Whether the sm_90a kernel computes this (paged, causal) call on a device of `computeCapability` (major * 10 + minor). */
export function sm90aCovers(a: PagedAttentionArgs, computeCapability: number): boolean {
  return (
    computeCapability === 90 &&
    (SM90A_HEAD_DIMS as readonly number[]).includes(a.headDim) &&
    !a.kvQuant &&
    !((a.softcap ?? 0) > 0)
  );
}

/** The kernel's build for a storage type and head size (`cfg`: the launcher's unless a sweep asks for another). */
export function sm90aPrefillDefines(
  dtype: AttentionDtype,
  headDim: number,
  cfg: Sm90aPrefillConfig = sm90aPrefillConfig(headDim),
): Record<string, number> {
  return {
    PAGODA_DTYPE: DTYPE_DEFINE[dtype],
    PAGODA_HEAD_DIM: headDim,
    PAGODA_WGMMA_BN: cfg.blockN,
    PAGODA_WGMMA_STAGES: cfg.stages,
    PAGODA_WGMMA_OVERLAP: cfg.overlap ? 1 : 0,
    PAGODA_WGMMA_PINGPONG: cfg.pingpong ? 1 : 0,
  };
}

/** Launches the kernel over `a` (which `sm90aCovers`) in build `cfg`. */
export function launchSm90aPrefill(
  rt: AttentionRuntime,
  dtype: AttentionDtype,
  a: PagedAttentionArgs,
  cfg: Sm90aPrefillConfig = sm90aPrefillConfig(a.headDim),
): void {
  const headDim = a.headDim as Sm90aHeadDim;
  const mBlocks = Math.ceil((a.maxSeqlenQ * (a.numHeads / a.numKvHeads)) / SM90A_PREFILL.blockM);
  if (mBlocks === 0 || a.numSeqs === 0) return;
  const smem = sm90aPrefillSharedBytes(headDim, cfg);
  rt.kernel(FLASH_PREFILL_SM90A[headDim], smem, sm90aPrefillDefines(dtype, headDim, cfg)).launch(
    [a.numKvHeads, a.numSeqs, mBlocks],
    [SM90A_PREFILL.threads],
    prefillArgs(a),
    smem,
  );
}

/** The arguments every paged-cache attention kernel takes (the prefill kernels and paged_decode). */
export function pagedCacheArgs(a: PagedAttentionArgs) {
  return {
    q: a.q,
    qStride: a.qStride,
    kCache: a.kCache,
    vCache: a.vCache,
    blockTables: a.blockTables,
    maxBlocksPerSeq: a.maxBlocksPerSeq,
    contextLens: a.contextLens,
    out: a.out,
    oStride: a.oStride,
    lse: a.lse,
    numHeads: a.numHeads,
    numKvHeads: a.numKvHeads,
    blockSizeLog2: Math.log2(a.blockSize),
    scaleLog2: a.scale * Math.LOG2E,
    slidingWindow: a.slidingWindow,
  };
}

/** The arguments both prefill kernels take (kernels' PREFILL_ARGS; flash_prefill.cu adds soft-capping and scales). */
export function prefillArgs(a: PagedAttentionArgs) {
  return { ...pagedCacheArgs(a), cuSeqlensQ: a.cuSeqlensQ };
}
