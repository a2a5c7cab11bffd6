import type { LayerKvCache, StepContext, Tensor } from '../backend.ts';
import type { HeadNorm, RopeSpec } from '../rope-spec.ts';
import { type CudaContext, stepOf } from './context.ts';
import type { DevPtr } from './driver.ts';
import { declareKernel } from './kernel.ts';
import { type CudaLayerKv, kvOf } from './kv-cache.ts';
import { kvQuantDefines } from './kv-layout.ts';
import { type CudaTensor, cuda, rowsCols } from './tensor.ts';

/**
 * kernels/rope.cu, one warp per (token, head): rotates q and k in place; with the norm weights (else null pointers)
 * it first RMS-normalizes each head; with v, the caches and the slots (else null pointers) it also stores each
 * token's rotated k and its v at its slot.
 */
export const ROPE = declareKernel('rope', 'rope', {
  q: 'ptr',
  k: 'ptr',
  positions: 'ptr',
  invFreq: 'ptr',
  numQHeads: 'i32',
  numKvHeads: 'i32',
  headDim: 'i32',
  rot: 'i32',
  neox: 'i32',
  mscale: 'f32',
  numTokens: 'i32',
  qNorm: 'ptr',
  kNorm: 'ptr',
  weightOffset: 'f32',
  eps: 'f32',
  v: 'ptr',
  kCache: 'ptr',
  vCache: 'ptr',
  slotMapping: 'ptr',
});
/** Warps (each a (token, head)) per block of kernels/rope.cu: small blocks spread a decode step's heads over SMs. */
const WARPS_PER_BLOCK = 4;

/** kernels/kv_cache.cu, one block per token: its `row` elements of k and v to its slot (slot -1: skipped). */
export const RESHAPE_AND_CACHE = declareKernel('kv_cache', 'reshape_and_cache', {
  k: 'ptr',
  v: 'ptr',
  kCache: 'ptr',
  vCache: 'ptr',
  slotMapping: 'ptr',
  row: 'i32',
});

/**
 * kernels/kv_cache.cu built with PAGODA_KV_QUANT (kv-layout.ts), one block per token: k and v quantized to their
 * slot, as the CPU twin stores them (fp8 with the layer's scales; q8_0 values and scales to their planes).
 */
export const QUANTIZE_AND_CACHE = declareKernel('kv_cache', 'quantize_and_cache', {
  k: 'ptr',
  v: 'ptr',
  kCache: 'ptr',
  vCache: 'ptr',
  kScales: 'ptr',
  vScales: 'ptr',
  slotMapping: 'ptr',
  row: 'i32',
  kScale: 'f32',
  vScale: 'f32',
});

/** Rotary position embeddings (kernels/rope.cu) and the KV cache write (kernels/kv_cache.cu). */
export class CudaRope {
  /** Each RoPE table's inverse frequencies on the device, uploaded on first use after the weights. */
  private readonly invFreq = new WeakMap<RopeSpec, DevPtr>();

  constructor(private readonly ctx: CudaContext) {}

  rope(q: Tensor, k: Tensor, headDim: number, rope: RopeSpec, step: StepContext, norm?: HeadNorm): void {
    this.launchRope(q, k, headDim, rope, step, norm, null);
  }

  ropeWriteKv(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    rope: RopeSpec,
    cache: LayerKvCache,
    step: StepContext,
    norm?: HeadNorm,
  ): void {
    const kv = kvOf(cache);
    if (kv.quant) {
      // The fused rope+write stores 16-bit rows; a quantized cache is rotated, then written by its own kernel.
      this.launchRope(q, k, kv.shape[3], rope, step, norm, null);
      this.writeKv(k, v, cache, step);
      return;
    }
    this.ctx.arena.markLayer();
    this.launchRope(q, k, kv.shape[3], rope, step, norm, { v: cuda(v), cache: kv });
  }

  /** k and v of the step's tokens into their cache slots (models without RoPE; slot -1 is skipped). */
  writeKv(k: Tensor, v: Tensor, cache: LayerKvCache, step: StepContext): void {
    const s = stepOf(step);
    const kt = cuda(k);
    const [T, row] = rowsCols(kt);
    if (T === 0) return;
    const c = kvOf(cache);
    this.ctx.arena.markLayer();
    if (c.quant) {
      const q = c.quant;
      // q8_0: a warp per 32 values (row is whole blocks, checked at load).
      this.ctx.kernel(QUANTIZE_AND_CACHE, kvQuantDefines(q.type)).launch([T], this.ctx.rowThreads(row), {
        k: kt.ptr,
        v: cuda(v).ptr,
        kCache: c.kPtr,
        vCache: c.vPtr,
        kScales: q.kScales,
        vScales: q.vScales,
        slotMapping: s.slots,
        row,
        kScale: q.kScale,
        vScale: q.vScale,
      });
      return;
    }
    this.ctx.kernel(RESHAPE_AND_CACHE).launch([T], this.ctx.rowThreads(row), {
      k: kt.ptr,
      v: cuda(v).ptr,
      kCache: c.k.ptr,
      vCache: c.v.ptr,
      slotMapping: s.slots,
      row,
    });
  }

  /** `rope`'s inverse frequencies on the device (uploaded on first use, beside the weights). */
  invFreqOf(rope: RopeSpec): DevPtr {
    let inv = this.invFreq.get(rope);
    if (inv === undefined) {
      inv = this.ctx.weights.alloc(rope.invFreq.byteLength);
      this.ctx.drv.upload(inv, rope.invFreq);
      this.invFreq.set(rope, inv);
    }
    return inv;
  }

  /**
   * kernels/rope.cu: normalizes (with `norm`) and rotates q and k in place; with `write`, also stores k and v at the
   * step's slots.
   */
  private launchRope(
    q: Tensor,
    k: Tensor,
    headDim: number,
    rope: RopeSpec,
    step: StepContext,
    norm: HeadNorm | undefined,
    write: { v: CudaTensor; cache: CudaLayerKv } | null,
  ): void {
    const s = stepOf(step);
    const qt = cuda(q);
    const kt = cuda(k);
    const [T, qw] = rowsCols(qt);
    const [, kw] = rowsCols(kt);
    if (T === 0) return;
    const warps = T * ((qw + kw) / headDim);
    this.ctx.kernel(ROPE).launch([Math.ceil(warps / WARPS_PER_BLOCK)], [32 * WARPS_PER_BLOCK], {
      q: qt.ptr,
      k: kt.ptr,
      positions: s.positions,
      invFreq: this.invFreqOf(rope),
      numTokens: T,
      numQHeads: qw / headDim,
      numKvHeads: kw / headDim,
      headDim,
      rot: rope.rotaryDim,
      neox: rope.style === 'neox' ? 1 : 0,
      mscale: rope.mscale,
      qNorm: norm ? cuda(norm.q).ptr : 0n,
      kNorm: norm ? cuda(norm.k).ptr : 0n,
      weightOffset: norm?.weightOffset ?? 0,
      eps: norm?.eps ?? 0,
      v: write ? write.v.ptr : 0n,
      kCache: write ? write.cache.k.ptr : 0n,
      vCache: write ? write.cache.v.ptr : 0n,
      slotMapping: write ? s.slots : 0n,
    });
  }
}
