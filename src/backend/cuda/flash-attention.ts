/**
 * Launchers for pagoda's attention kernels over the paged KV cache (kernels/flash_prefill.cu, kernels/paged_decode.cu).
 * Both take the step's plan as uploaded by the backend (block tables, context lengths, cu_seqlens_q) and write
 * O `[T, Hq*D]` (in the storage type, bf16 or fp16) and the LSE `[T, Hq]` (fp32, natural log of the sum of
 * exp(scale * q.k)). Q, the KV cache and O share one 16-bit type; each type is its own build of the same sources
 * (PAGODA_DTYPE).
 * `prefill` serves any step (mixed prefill/decode, chunked prefill, prefix hits); `decode` is the faster path when
 * every sequence has exactly one query token (token s belongs to sequence s). A quantized cache (`kvQuant`: fp8 or
 * q8_0, kv-layout.ts) is read by its own builds (PAGODA_KV_QUANT), which dequantize K and V tiles in shared memory.
 */

import type { DType } from '../backend.ts';
import type { CudaDriver, DevPtr } from './driver.ts';
import { FLASH_PREFILL, HEAD_DIMS, PAGED_DECODE, PAGED_DECODE_MERGE } from './flash-kernels.ts';
import {
  launchSm90aPrefill,
  type PrefillKernel,
  pagedCacheArgs,
  prefillArgs,
  sm90aCovers,
} from './flash-prefill-sm90a.ts';
import {
  DECODE,
  type DecodeConfig,
  decodeCtasPerSm,
  decodeSharedBytes,
  decodeSplits,
  defaultConfigs,
  type PrefillConfig,
  prefillSharedBytes,
  type Sm90aPrefillConfig,
} from './flash-sizing.ts';
import type { ArgList, Kernel, KernelDecl } from './kernel.ts';
import type { QuantKv } from './kv-cache.ts';
import { kvQuantDefines, tilesReadQuant } from './kv-layout.ts';
import type { KernelModules } from './modules.ts';
import { DTYPE_DEFINE } from './tensor.ts';
import { type QuantizedX, type XForm, xFormArgs, xFormDefines } from './x-form.ts';

/** The storage types the tensor-core kernels serve (float32 stays on kernels/attention.cu). */
export type AttentionDtype = Exclude<DType, 'f32'>;
export const ATTENTION_DTYPES: readonly AttentionDtype[] = ['bf16', 'f16'];

/** What the launchers need from the CUDA backend. */
export interface AttentionRuntime {
  /** Streaming multiprocessors of the device (sizes the decode split). */
  readonly smCount: number;
  /** The device's compute capability, major * 10 + minor (90: Hopper, where the sm_90a prefill kernel runs). */
  readonly computeCapability: number;
  /** The declared kernel compiled with `defines`, allowed `dynamicSmem` bytes of dynamic shared memory. */
  kernel<A extends ArgList>(
    decl: KernelDecl<A>,
    dynamicSmem: number,
    defines?: Readonly<Record<string, number>>,
  ): Kernel<A>;
}

/** The runtime over the CUDA backend's driver and NVRTC kernel modules. */
export function cudaAttentionRuntime(drv: CudaDriver, modules: KernelModules): AttentionRuntime {
  return {
    smCount: drv.info.smCount,
    computeCapability: drv.info.ccMajor * 10 + drv.info.ccMinor,
    kernel: (decl, dynamicSmem, defines = {}) => modules.get(decl, defines, dynamicSmem),
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
  /** Attention-logit soft-cap (`AttentionSpec.softcap`); 0 or absent = off. */
  softcap?: number;
  /** A quantized cache's form, q8_0 scale planes and fp8 scales; absent: the cache is in the 16-bit type. */
  kvQuant?: QuantKv | null;
  /** decode only: O also written as q8 groups here (`decodeWritesQ8`), for the o projection's integer GEMV. */
  xq?: QuantizedX;
}

/** Whether decode can write O as q8 groups too: each 32-value group within one head, O's rows dense. */
export function decodeWritesQ8(headDim: number): boolean {
  return headDim % 32 === 0;
}

/** Scratch for split-KV decode: fp32 partial outputs and their LSE. */
export interface DecodeWorkspace {
  partialO: DevPtr;
  partialLse: DevPtr;
  /** Bytes available at partialO and partialLse (see `decodeWorkspaceBytes`). */
  maxSplits: number;
}

/** The kernels' quantized-cache arguments (unread by the 16-bit builds). */
function quantArgs(kv: QuantKv | null | undefined) {
  return { kScales: kv?.kScales ?? 0n, vScales: kv?.vScales ?? 0n, kScale: kv?.kScale ?? 1, vScale: kv?.vScale ?? 1 };
}

/** Refuses shapes the kernels are not built for; returns the head size, one the kernels are instantiated for. */
function checkShapes(a: PagedAttentionArgs): (typeof HEAD_DIMS)[number] {
  const headDim = a.headDim as (typeof HEAD_DIMS)[number];
  if (!HEAD_DIMS.includes(headDim)) {
    throw new Error(
      `attention kernels: head_dim ${a.headDim} is not supported (expected one of ${HEAD_DIMS.join(', ')})`,
    );
  }
  if (a.numHeads % a.numKvHeads !== 0) {
    throw new Error(`attention kernels: ${a.numHeads} query heads are not a multiple of ${a.numKvHeads} KV heads`);
  }
  if (a.blockSize < 16 || (a.blockSize & (a.blockSize - 1)) !== 0) {
    throw new Error(`attention kernels: block size ${a.blockSize} must be a power of two >= 16`);
  }
  if (!tilesReadQuant(a.kvQuant?.type, headDim)) {
    throw new Error(`attention kernels: a q8_0 cache's heads of ${headDim} are read by the simple kernel only`);
  }
  return headDim;
}

/** The build of the prefill kernel for a head size, tile configuration and variant (no-cache, non-causal). */
export function prefillDefines(
  dtype: AttentionDtype,
  headDim: number,
  cfg: PrefillConfig,
  variant: Readonly<Record<string, number>> = {},
  quant?: QuantKv['type'],
): Record<string, number> {
  return {
    ...kvQuantDefines(quant),
    PAGODA_DTYPE: DTYPE_DEFINE[dtype],
    PAGODA_HEAD_DIM: headDim,
    PAGODA_PREFILL_WARPS: cfg.warps,
    PAGODA_PREFILL_MT: cfg.mTiles,
    PAGODA_PREFILL_BN: cfg.blockN,
    ...variant,
  };
}

/** The prefill kernel's no-cache variant (`prefillDefines`' `variant`): causal for decoders, not for encoders. */
export function selfPrefillVariant(causal: boolean): Record<string, number> {
  return { PAGODA_PREFILL_SELF: 1, PAGODA_PREFILL_CAUSAL: causal ? 1 : 0 };
}

/** The build of the decode kernel for a head size and tile configuration. */
export function decodeDefines(
  dtype: AttentionDtype,
  headDim: number,
  cfg: DecodeConfig,
  quant?: QuantKv['type'],
  form: XForm | null = null,
): Record<string, number> {
  return {
    ...kvQuantDefines(quant),
    ...xFormDefines(form),
    PAGODA_DTYPE: DTYPE_DEFINE[dtype],
    PAGODA_HEAD_DIM: headDim,
    PAGODA_DECODE_WARPS: cfg.warps,
    PAGODA_DECODE_TILE: cfg.tileN,
    PAGODA_DECODE_STAGES: cfg.stages,
  };
}

/** The split-KV merge's build (kernels/paged_decode_merge.cu): the storage type and the output's forms. */
export function mergeDefines(dtype: AttentionDtype, form: XForm | null = null): Record<string, number> {
  return { PAGODA_DTYPE: DTYPE_DEFINE[dtype], ...xFormDefines(form) };
}

export class FlashAttention {
  /**
   * Kernels for Q / KV cache / O stored as `dtype`. `opts` overrides the tile shapes for every head size
   * (benchmarks and tests sweep them; the defaults, per head size, are `defaultConfigs`). `prefillKernel` 'wgmma'
   * (the default; 'mma': always flash_prefill.cu) sends the prefill calls the sm_90a kernel covers to it on a Hopper card;
   * `sm90a` overrides that kernel's build (default `sm90aPrefillConfig` per head size).
   */
  constructor(
    private readonly rt: AttentionRuntime,
    readonly dtype: AttentionDtype,
    private readonly opts: {
      prefill?: PrefillConfig;
      decode?: DecodeConfig;
      prefillKernel?: PrefillKernel;
      sm90a?: Sm90aPrefillConfig;
    } = {},
  ) {}

  /** The kernel `prefill(a)` runs. */
  prefillKernelFor(a: PagedAttentionArgs): PrefillKernel {
    return (this.opts.prefillKernel ?? 'wgmma') === 'wgmma' && sm90aCovers(a, this.rt.computeCapability)
      ? 'wgmma'
      : 'mma';
  }

  private prefillConfig(headDim: number): PrefillConfig {
    return this.opts.prefill ?? defaultConfigs(headDim).prefill;
  }

  private decodeConfig(headDim: number, quant: QuantKv['type'] | undefined): DecodeConfig {
    return this.opts.decode ?? defaultConfigs(headDim, quant).decode;
  }

  private prefillKernel(
    headDim: (typeof HEAD_DIMS)[number],
    variant: Readonly<Record<string, number>>,
    quant: QuantKv['type'] | undefined,
  ) {
    const cfg = this.prefillConfig(headDim);
    return this.rt.kernel(
      FLASH_PREFILL[headDim],
      prefillSharedBytes(headDim, cfg, quant),
      prefillDefines(this.dtype, headDim, cfg, variant, quant),
    );
  }

  private decodeKernel(headDim: (typeof HEAD_DIMS)[number], quant: QuantKv['type'] | undefined, form: XForm | null) {
    const cfg = this.decodeConfig(headDim, quant);
    return this.rt.kernel(
      PAGED_DECODE[headDim],
      decodeSharedBytes(headDim, cfg, quant),
      decodeDefines(this.dtype, headDim, cfg, quant, form),
    );
  }

  /** The split count `decode` uses for these arguments when none is given. */
  decodeSplitsFor(a: PagedAttentionArgs, maxSplits: number = DECODE.maxSplits): number {
    return decodeSplits({
      numSeqs: a.numSeqs,
      numHeads: a.numHeads,
      numKvHeads: a.numKvHeads,
      maxContext: a.maxBlocksPerSeq * a.blockSize,
      smCount: this.rt.smCount,
      ctasPerSm: decodeCtasPerSm(a.headDim, this.decodeConfig(a.headDim, a.kvQuant?.type), a.kvQuant?.type),
      maxSplits: Math.min(DECODE.maxSplits, maxSplits),
    });
  }

  /** Varlen causal attention of every query token of the step over its sequence's cached keys. */
  prefill(a: PagedAttentionArgs): void {
    if (this.prefillKernelFor(a) === 'wgmma') {
      checkShapes(a);
      launchSm90aPrefill(this.rt, this.dtype, a, this.opts.sm90a);
    } else {
      this.launchPrefill(a, {});
    }
  }

  /**
   * Varlen attention with no cache (embedding models): `kCache` / `vCache` are this step's K and V rows
   * `[T, Hk*D]`, every sequence whole (the block table, context lengths and block size are not read); `causal`
   * false lets every query see its whole sequence (encoders).
   */
  selfPrefill(a: PagedAttentionArgs, causal: boolean): void {
    this.launchPrefill(a, selfPrefillVariant(causal));
  }

  private launchPrefill(a: PagedAttentionArgs, variant: Readonly<Record<string, number>>): void {
    const headDim = checkShapes(a);
    const group = a.numHeads / a.numKvHeads;
    const cfg = this.prefillConfig(headDim);
    const mBlocks = Math.ceil((a.maxSeqlenQ * group) / (16 * cfg.warps * cfg.mTiles));
    if (mBlocks === 0 || a.numSeqs === 0) return;
    const quant = a.kvQuant?.type;
    if (quant && variant.PAGODA_PREFILL_SELF)
      throw new Error('attention kernels: the no-cache prefill reads 16-bit K and V');
    const smem = prefillSharedBytes(headDim, cfg, quant);
    this.prefillKernel(headDim, variant, quant).launch(
      [a.numKvHeads, a.numSeqs, mBlocks],
      [32 * cfg.warps],
      {
        ...prefillArgs(a),
        softcap: a.softcap ?? 0,
        ...quantArgs(a.kvQuant),
      },
      smem,
    );
  }

  /**
   * One query token per sequence. `numSplits` defaults to `decodeSplits(...)` over the block-table capacity;
   * with more than one split the partials go to `ws` and a merge kernel combines them.
   */
  decode(a: PagedAttentionArgs, ws: DecodeWorkspace, numSplits?: number): void {
    const headDim = checkShapes(a);
    if (a.numSeqs === 0) return;
    const splits = numSplits ?? this.decodeSplitsFor(a, ws.maxSplits);
    if (splits < 1 || splits > ws.maxSplits)
      throw new Error(`attention decode: ${splits} splits, workspace holds ${ws.maxSplits}`);
    const headGroups = Math.ceil(a.numHeads / a.numKvHeads / 16);
    const quant = a.kvQuant?.type;
    const cfg = this.decodeConfig(headDim, quant);
    const form = a.xq?.form ?? null;
    if (form && (form !== 'q8' || !decodeWritesQ8(headDim) || a.oStride !== a.numHeads * headDim))
      throw new Error(`attention decode: O as ${form} at head size ${headDim}, stride ${a.oStride}`);
    this.decodeKernel(headDim, quant, form).launch(
      [splits, a.numKvHeads * headGroups, a.numSeqs],
      [32 * cfg.warps],
      {
        ...pagedCacheArgs(a),
        partialO: ws.partialO,
        partialLse: ws.partialLse,
        softcap: a.softcap ?? 0,
        ...quantArgs(a.kvQuant),
        ...xFormArgs(a.xq),
      },
      decodeSharedBytes(headDim, cfg, quant),
    );
    if (splits === 1) return;
    this.rt.kernel(PAGED_DECODE_MERGE, 0, mergeDefines(this.dtype, form)).launch(
      [a.numHeads, a.numSeqs],
      [headDim],
      {
        partialO: ws.partialO,
        partialLse: ws.partialLse,
        out: a.out,
        oStride: a.oStride,
        lse: a.lse,
        numHeads: a.numHeads,
        numSplits: splits,
        headDim,
        ...xFormArgs(a.xq),
      },
      0,
    );
  }
}
