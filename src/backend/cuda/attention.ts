import type { AttentionSpec, LayerKvCache, StepContext, Tensor } from '../backend.ts';
import { type CudaContext, stepOf } from './context.ts';
import { DecodeScratch } from './decode-scratch.ts';
import type { DevPtr } from './driver.ts';
import {
  ATTENTION_DTYPES,
  type AttentionDtype,
  cudaAttentionRuntime,
  decodeWritesQ8,
  FlashAttention,
} from './flash-attention.ts';
import { HEAD_DIMS } from './flash-kernels.ts';
import { declareKernel } from './kernel.ts';
import { type CudaLayerKv, kvOf, type QuantKv } from './kv-cache.ts';
import { kvQuantDefines, tilesReadQuant } from './kv-layout.ts';
import type { CudaStepContext } from './step-buffers.ts';
import { type CudaTensor, cuda } from './tensor.ts';
import { quantizedOutput, type XForm } from './x-form.ts';

const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** kernels/attention.cu's build for a head size and query heads per KV head; `variant` its no-cache build. */
export function simpleAttentionDefines(
  headDim: number,
  group: number,
  variant: Readonly<Record<string, number>> = {},
  quant?: QuantKv['type'],
): Record<string, number> {
  return {
    EPL: pow2(Math.ceil(headDim / 32)),
    GMAX: simpleHeadsPerBlock(group),
    ...kvQuantDefines(quant),
    ...variant,
  };
}

/**
 * Query heads one block of the simple kernel holds in registers: the group's, up to 16 (multi-query attention's
 * groups of 24-48 take several blocks per KV head).
 */
function simpleHeadsPerBlock(group: number): number {
  return Math.min(16, pow2(group));
}

/** The simple kernel's no-cache variant (`simpleAttentionDefines`' `variant`): causal for decoders. */
export function simpleSelfVariant(causal: boolean): Record<string, number> {
  return { SELF: 1, CAUSAL: causal ? 1 : 0 };
}

/**
 * kernels/attention.cu, the simple kernel: a block per (KV head, query token), built per EPL (head_dim / 32 rounded
 * up to a power of two) and GMAX (query heads per KV head, likewise).
 */
export const PAGED_ATTENTION = declareKernel('attention', 'paged_attention', {
  out: 'ptr',
  q: 'ptr',
  kCache: 'ptr',
  vCache: 'ptr',
  cuSeqlensQ: 'ptr',
  contextLens: 'ptr',
  blockTables: 'ptr',
  numSeqs: 'i32',
  maxBlocks: 'i32',
  blockSize: 'i32',
  numQHeads: 'i32',
  numKvHeads: 'i32',
  headDim: 'i32',
  scale: 'f32',
  window: 'i32',
  softcap: 'f32',
  lse: 'ptr',
  kScales: 'ptr',
  vScales: 'ptr',
  kScale: 'f32',
  vScale: 'f32',
});

/**
 * Paged attention for the CUDA backend. bf16 or fp16 storage with head_dim 64, 80, 96, 128 or 256 and power-of-two blocks of 16+
 * goes to the tensor-core kernels (flash_prefill for any step, paged_decode when every sequence has one query);
 * everything else (float32 storage, other head sizes: the small test models, or CudaSettings.simpleAttention) to the
 * first, simple kernel, kernels/attention.cu, which is also the reference the fast ones were checked against.
 */
export class CudaAttention {
  /** The tensor-core kernels in the backend's storage type; null for float32. */
  private readonly flash: FlashAttention | null;
  private readonly scratch: DecodeScratch;

  constructor(private readonly ctx: CudaContext) {
    const dtype = ctx.dtype;
    this.flash = ATTENTION_DTYPES.includes(dtype as AttentionDtype)
      ? new FlashAttention(cudaAttentionRuntime(ctx.drv, ctx.mods), dtype as AttentionDtype, {
          prefillKernel: ctx.settings.prefillKernel,
        })
      : null;
    this.scratch = new DecodeScratch(
      (bytes) => ctx.drv.alloc(bytes),
      () => ctx.steps.capacity.seqs,
    );
  }

  private fast(spec: AttentionSpec, blockSize: number, quant?: QuantKv['type']): boolean {
    return (
      (HEAD_DIMS as readonly number[]).includes(spec.headDim) &&
      tilesReadQuant(quant, spec.headDim) &&
      blockSize >= 16 &&
      (blockSize & (blockSize - 1)) === 0 &&
      !this.ctx.settings.simpleAttention
    );
  }

  /**
   * Attention of the step's queries `q` [T, numHeads * headDim] over the layer's cache, into a new tensor. `form`:
   * the input form of the linear the output feeds (CudaLinear.inputForm); the decode kernels write q8 groups beside
   * O where their heads hold whole groups (an e4m3 row's scale spans every head: the linear quantizes its own).
   */
  attention(q: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext, form: XForm | null = null): Tensor {
    return this.attentionWithLse(q, cache, spec, step, form).out;
  }

  /** `attention` and each query row's LSE `[T, numHeads]` (f32), which every kernel writes. */
  attentionWithLse(
    q: Tensor,
    cache: LayerKvCache,
    spec: AttentionSpec,
    step: StepContext,
    form: XForm | null = null,
  ): { out: Tensor; lse: Tensor } {
    const qt = cuda(q);
    const [kv, s] = [kvOf(cache), stepOf(step)];
    const q8 = form === 'q8' && this.decodes(spec, s, kv) && decodeWritesQ8(spec.headDim);
    const out = quantizedOutput(this.ctx, qt.shape, q8 ? 'q8' : null);
    const lse = this.ctx.empty([qt.shape[0]!, spec.numHeads], 'f32');
    this.run(out, lse, qt, kv, spec, s);
    return { out, lse };
  }

  /** Whether the step's attention takes the flash decode kernels: one query token per sequence. */
  private decodes(spec: AttentionSpec, step: CudaStepContext, cache: CudaLayerKv): boolean {
    const b = step.batch;
    const fast = this.flash !== null && this.fast(spec, b.blockSize, cache.quant?.type);
    return fast && b.maxSeqlenQ === 1 && b.inputIds.length === b.numSeqs;
  }

  private run(
    out: CudaTensor,
    lse: CudaTensor,
    q: CudaTensor,
    cache: CudaLayerKv,
    spec: AttentionSpec,
    step: CudaStepContext,
  ): void {
    const b = step.batch;
    const T = b.inputIds.length;
    if (T === 0) return;
    if (!this.flash || !this.fast(spec, b.blockSize, cache.quant?.type)) {
      this.simple(out, q, { k: cache.kPtr, v: cache.vPtr, quant: cache.quant }, spec, step, lse.ptr);
      return;
    }
    const args = {
      q: q.ptr,
      qStride: spec.numHeads * spec.headDim,
      kCache: cache.kPtr,
      vCache: cache.vPtr,
      blockTables: step.blockTables,
      maxBlocksPerSeq: step.tableWidth,
      contextLens: step.contextLens,
      cuSeqlensQ: step.cuSeqlensQ,
      out: out.ptr,
      oStride: spec.numHeads * spec.headDim,
      lse: lse.ptr,
      numSeqs: b.numSeqs,
      maxSeqlenQ: b.maxSeqlenQ,
      numHeads: spec.numHeads,
      numKvHeads: spec.numKvHeads,
      headDim: spec.headDim,
      blockSize: b.blockSize,
      scale: spec.scale,
      slidingWindow: spec.slidingWindow,
      softcap: spec.softcap,
      kvQuant: cache.quant,
    };
    if (this.decodes(spec, step, cache))
      this.flash.decode({ ...args, xq: out.quantized }, this.scratch.get(b.numSeqs, spec));
    else this.flash.prefill(args);
  }

  /**
   * Attention with no cache: each sequence's queries over its own k and v rows of this step (embedding models),
   * causal unless `spec.causal` is false. The flash kernel's no-cache build where it applies, else the simple one's.
   */
  selfAttention(q: Tensor, k: Tensor, v: Tensor, spec: AttentionSpec, step: StepContext): Tensor {
    const [qt, kt, vt] = [this.ctx.own(q), this.ctx.own(k), this.ctx.own(v)];
    // Once per layer, as a KV write is for decoders: the arena may then wrap over layers three back.
    this.ctx.arena.markLayer();
    const out = this.ctx.empty(qt.shape);
    const s = stepOf(step);
    const T = s.batch.inputIds.length;
    if (T === 0) return out;
    const causal = spec.causal !== false;
    if (!this.flash || !this.fast(spec, 16)) {
      this.simple(out, qt, { k: kt.ptr, v: vt.ptr, quant: null }, spec, s, 0n, simpleSelfVariant(causal));
      return out;
    }
    const stride = spec.numHeads * spec.headDim;
    const lse = this.ctx.empty([T, spec.numHeads], 'f32');
    this.flash.selfPrefill(
      {
        q: qt.ptr,
        qStride: stride,
        kCache: kt.ptr,
        vCache: vt.ptr,
        blockTables: s.blockTables,
        maxBlocksPerSeq: s.tableWidth,
        contextLens: s.contextLens,
        cuSeqlensQ: s.cuSeqlensQ,
        out: out.ptr,
        oStride: stride,
        lse: lse.ptr,
        numSeqs: s.batch.numSeqs,
        maxSeqlenQ: s.batch.maxSeqlenQ,
        numHeads: spec.numHeads,
        numKvHeads: spec.numKvHeads,
        headDim: spec.headDim,
        blockSize: 16,
        scale: spec.scale,
        slidingWindow: 0,
        softcap: spec.softcap,
      },
      causal,
    );
    return out;
  }

  /**
   * One block per (query token, KV head); a warp per key with an online softmax (kernels/attention.cu), over the
   * paged cache (a quantized one is dequantized value by value) or, with `variant` its no-cache build (SELF,
   * CAUSAL), over this step's k and v.
   */
  private simple(
    out: CudaTensor,
    q: CudaTensor,
    kv: { k: DevPtr; v: DevPtr; quant: QuantKv | null },
    spec: AttentionSpec,
    step: CudaStepContext,
    lse: DevPtr,
    variant: Readonly<Record<string, number>> = {},
  ): void {
    const quant = kv.quant;
    const { numHeads, numKvHeads, headDim, scale, slidingWindow } = spec;
    const group = numHeads / numKvHeads;
    if (!Number.isInteger(group) || headDim > 256) {
      throw new Error(
        `attention: ${numHeads} query heads over ${numKvHeads} KV heads of size ${headDim} not supported`,
      );
    }
    const kernel = this.ctx.kernel(PAGED_ATTENTION, simpleAttentionDefines(headDim, group, variant, quant?.type));
    const blocksPerGroup = Math.ceil(group / simpleHeadsPerBlock(group));
    kernel.launch([numKvHeads, step.batch.inputIds.length, blocksPerGroup], [128], {
      out: out.ptr,
      q: q.ptr,
      kCache: kv.k,
      vCache: kv.v,
      cuSeqlensQ: step.cuSeqlensQ,
      contextLens: step.contextLens,
      blockTables: step.blockTables,
      numSeqs: step.batch.numSeqs,
      maxBlocks: step.tableWidth,
      blockSize: step.batch.blockSize,
      numQHeads: numHeads,
      numKvHeads,
      headDim,
      scale,
      window: slidingWindow,
      softcap: spec.softcap ?? 0,
      lse,
      kScales: quant?.kScales ?? 0n,
      vScales: quant?.vScales ?? 0n,
      kScale: quant?.kScale ?? 1,
      vScale: quant?.vScale ?? 1,
    });
  }
}
