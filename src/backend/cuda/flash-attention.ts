/**
 * Launchers for pagoda's attention kernels over the paged KV cache (kernels/flash_prefill.cu, kernels/paged_decode.cu).
 * Both take the step's plan as uploaded by the backend (block tables, context lengths, cu_seqlens_q) and write
 * O `[T, Hq*D]` (bf16) and the LSE `[T, Hq]` (fp32, natural log of the sum of exp(scale * q.k)).
 * `prefill` serves any step (mixed prefill/decode, chunked prefill, prefix hits); `decode` is the faster path when
 * every sequence has exactly one query token (token s belongs to sequence s).
 */

import type { CudaDriver, DevPtr } from './driver.ts';
import type { KernelModules } from './modules.ts';

/** A loaded kernel; `args` follow the kinds string given when it was loaded (p pointer, i int32, f float32). */
export interface AttentionKernel {
  launch(
    grid: readonly [number, number?, number?],
    block: readonly [number, number?, number?],
    args: readonly (number | bigint)[],
    smem: number,
  ): void;
}

/** What the launchers need from the CUDA backend. */
export interface AttentionRuntime {
  /** Streaming multiprocessors of the device (sizes the decode split). */
  readonly smCount: number;
  /** Function `fn` of `kernels/<file>.cu`, allowed `dynamicSmem` bytes of dynamic shared memory. */
  kernel(file: string, fn: string, kinds: string, dynamicSmem: number): AttentionKernel;
}

/** The runtime over the CUDA backend's driver and NVRTC kernel modules. */
export function cudaAttentionRuntime(drv: CudaDriver, modules: KernelModules): AttentionRuntime {
  return {
    smCount: drv.info.smCount,
    kernel: (file, fn, kinds, dynamicSmem) => modules.get(file, fn, kinds, {}, dynamicSmem),
  };
}

/** Shapes and device buffers of one attention call. Strides are in elements between consecutive tokens. */
export interface PagedAttentionArgs {
  q: DevPtr;
  qStride: number;
  kCache: DevPtr;
  vCache: DevPtr;
  blockTables: DevPtr;
  maxBlocksPerSeq: number;
  contextLens: DevPtr;
  cuSeqlensQ: DevPtr;
  out: DevPtr;
  oStride: number;
  lse: DevPtr;
  numSeqs: number;
  /** Longest query length of the step (sizes the prefill grid). */
  maxSeqlenQ: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  scale: number;
  /** 0 = unlimited. */
  slidingWindow: number;
}

/** Scratch for split-KV decode: fp32 partial outputs and their LSE. */
export interface DecodeWorkspace {
  partialO: DevPtr;
  partialLse: DevPtr;
  /** Bytes available at partialO and partialLse (see `decodeWorkspaceBytes`). */
  maxSplits: number;
}

const PREFILL = { warps: 8, blockM: 128, blockN: 64 } as const;
const DECODE = { warps: 4, tileN: 16, stages: 3, ctasPerSm: 2, maxSplits: 32, minKeysPerSplit: 256 } as const;
const LOG2E = Math.LOG2E;
const HEAD_DIMS = [64, 128] as const;

const PREFILL_KINDS = 'pipppipppipiiifi';
const DECODE_KINDS = 'pipppippipppiiifi';
const MERGE_KINDS = 'pppipiii';

export function prefillSharedBytes(headDim: number): number {
  return (PREFILL.blockM + 4 * PREFILL.blockN) * (headDim + 8) * 2;
}

export function decodeSharedBytes(headDim: number): number {
  return (16 + DECODE.warps * DECODE.stages * 2 * DECODE.tileN) * (headDim + 8) * 2;
}

/** Bytes of `partialO` and `partialLse` for up to `numSeqs` sequences. */
export function decodeWorkspaceBytes(numSeqs: number, numHeads: number, headDim: number, maxSplits = DECODE.maxSplits) {
  return { partialO: numSeqs * numHeads * maxSplits * headDim * 4, partialLse: numSeqs * numHeads * maxSplits * 4 };
}

/**
 * How many pieces to cut each sequence's context into: 1 while (sequences x KV heads x head groups) CTAs fill the
 * GPU, otherwise enough to fill it, with at least `minKeysPerSplit` keys each. It depends on the batch and the
 * capacity `maxContext` (not the current lengths), so a captured CUDA graph stays valid as contexts grow.
 */
export function decodeSplits(
  numSeqs: number,
  numHeads: number,
  numKvHeads: number,
  maxContext: number,
  smCount: number,
  maxSplits: number = DECODE.maxSplits,
): number {
  const ctas = numSeqs * numKvHeads * Math.ceil(numHeads / numKvHeads / 16);
  const target = smCount * DECODE.ctasPerSm;
  if (ctas >= target) return 1;
  const byContext = Math.max(1, Math.floor(maxContext / DECODE.minKeysPerSplit));
  return Math.max(1, Math.min(Math.ceil(target / ctas), byContext, maxSplits));
}

function checkShapes(a: PagedAttentionArgs): void {
  if (!HEAD_DIMS.includes(a.headDim as 64 | 128)) {
    throw new Error(`attention kernels: head_dim ${a.headDim} is not supported (expected ${HEAD_DIMS.join(' or ')})`);
  }
  if (a.numHeads % a.numKvHeads !== 0) {
    throw new Error(`attention kernels: ${a.numHeads} query heads are not a multiple of ${a.numKvHeads} KV heads`);
  }
  if (a.blockSize < 16 || (a.blockSize & (a.blockSize - 1)) !== 0) {
    throw new Error(`attention kernels: block size ${a.blockSize} must be a power of two >= 16`);
  }
}

export class FlashAttention {
  constructor(private readonly rt: AttentionRuntime) {}

  private prefillKernel(headDim: number): AttentionKernel {
    return this.rt.kernel(
      'flash_prefill',
      `flash_prefill_bf16_hd${headDim}`,
      PREFILL_KINDS,
      prefillSharedBytes(headDim),
    );
  }

  private decodeKernel(headDim: number): AttentionKernel {
    return this.rt.kernel('paged_decode', `paged_decode_bf16_hd${headDim}`, DECODE_KINDS, decodeSharedBytes(headDim));
  }

  /** Varlen causal attention of every query token of the step over its sequence's cached keys. */
  prefill(a: PagedAttentionArgs): void {
    checkShapes(a);
    const group = a.numHeads / a.numKvHeads;
    const mBlocks = Math.ceil((a.maxSeqlenQ * group) / PREFILL.blockM);
    if (mBlocks === 0 || a.numSeqs === 0) return;
    const smem = prefillSharedBytes(a.headDim);
    this.prefillKernel(a.headDim).launch(
      [mBlocks, a.numKvHeads, a.numSeqs],
      [32 * PREFILL.warps],
      [
        a.q,
        a.qStride,
        a.kCache,
        a.vCache,
        a.blockTables,
        a.maxBlocksPerSeq,
        a.contextLens,
        a.cuSeqlensQ,
        a.out,
        a.oStride,
        a.lse,
        a.numHeads,
        a.numKvHeads,
        Math.log2(a.blockSize),
        a.scale * LOG2E,
        a.slidingWindow,
      ],
      smem,
    );
  }

  /**
   * One query token per sequence. `numSplits` defaults to `decodeSplits(...)` over the block-table capacity;
   * with more than one split the partials go to `ws` and a merge kernel combines them.
   */
  decode(a: PagedAttentionArgs, ws: DecodeWorkspace, numSplits?: number): void {
    checkShapes(a);
    if (a.numSeqs === 0) return;
    const maxSplits = Math.min(DECODE.maxSplits, ws.maxSplits);
    const splits =
      numSplits ??
      decodeSplits(a.numSeqs, a.numHeads, a.numKvHeads, a.maxBlocksPerSeq * a.blockSize, this.rt.smCount, maxSplits);
    if (splits < 1 || splits > ws.maxSplits)
      throw new Error(`attention decode: ${splits} splits, workspace holds ${ws.maxSplits}`);
    const headGroups = Math.ceil(a.numHeads / a.numKvHeads / 16);
    this.decodeKernel(a.headDim).launch(
      [splits, a.numKvHeads * headGroups, a.numSeqs],
      [32 * DECODE.warps],
      [
        a.q,
        a.qStride,
        a.kCache,
        a.vCache,
        a.blockTables,
        a.maxBlocksPerSeq,
        a.contextLens,
        a.out,
        a.oStride,
        a.lse,
        ws.partialO,
        ws.partialLse,
        a.numHeads,
        a.numKvHeads,
        Math.log2(a.blockSize),
        a.scale * LOG2E,
        a.slidingWindow,
      ],
      decodeSharedBytes(a.headDim),
    );
    if (splits === 1) return;
    this.rt
      .kernel('paged_decode', 'paged_decode_merge', MERGE_KINDS, 0)
      .launch(
        [a.numHeads, a.numSeqs],
        [a.headDim],
        [ws.partialO, ws.partialLse, a.out, a.oStride, a.lse, a.numHeads, splits, a.headDim],
        0,
      );
  }
}
