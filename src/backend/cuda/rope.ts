import type { LayerKvCache, RopeSpec, StepContext, Tensor } from '../backend.ts';
import { type CudaContext, stepOf } from './context.ts';
import type { DevPtr } from './driver.ts';
import { declareKernel } from './kernel.ts';
import { type CudaLayerKv, kvOf } from './kv-cache.ts';
import { kvQuantDefines } from './kv-layout.ts';
import { type CudaTensor, cuda, rowsCols } from './tensor.ts';

/**
 * kernels/rope.cu, one block per token: rotates q and k in place; with v, the caches and the slots (else null
 * pointers) it also stores the token's rotated k and its v at its slot.
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
  v: 'ptr',
  kCache: 'ptr',
  vCache: 'ptr',
  slotMapping: 'ptr',
});
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

  rope(q: Tensor, k: Tensor, headDim: number, rope: RopeSpec, step: StepContext): void {
    this.launchRope(q, k, headDim, rope, step, null);
  }

  ropeWriteKv(q: Tensor, k: Tensor, v: Tensor, rope: RopeSpec, cache: LayerKvCache, step: StepContext): void {
    const kv = kvOf(cache);
    if (kv.quant) {
      // The fused rope+write stores 16-bit rows; a quantized cache is rotated, then written by its own kernel.
      this.launchRope(q, k, kv.shape[3], rope, step, null);
      this.writeKv(k, v, cache, step);
      return;
    }
    this.ctx.arena.markLayer();
    this.launchRope(q, k, kv.shape[3], rope, step, { v: cuda(v), cache: kv });
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

  /** kernels/rope.cu: rotates q and k in place; with `write`, also stores k and v at the step's slots. */
  private launchRope(
    q: Tensor,
    k: Tensor,
    headDim: number,
    rope: RopeSpec,
    step: StepContext,
    write: { v: CudaTensor; cache: CudaLayerKv } | null,
  ): void {
    const s = stepOf(step);
    const qt = cuda(q);
    const kt = cuda(k);
    const [T, qw] = rowsCols(qt);
    const [, kw] = rowsCols(kt);
    if (T === 0) return;
    let inv = this.invFreq.get(rope);
    if (inv === undefined) {
      inv = this.ctx.weights.alloc(rope.invFreq.byteLength);
      this.ctx.drv.upload(inv, rope.invFreq);
      this.invFreq.set(rope, inv);
    }
    const pairs = ((qw + kw) / headDim) * (rope.rotaryDim / 2);
    const threads = Math.min(512, Math.max(32, Math.ceil(Math.max(pairs, write ? kw : 0) / 32) * 32));
    this.ctx.kernel(ROPE).launch([T], [threads], {
      q: qt.ptr,
      k: kt.ptr,
      positions: s.positions,
      invFreq: inv,
      numQHeads: qw / headDim,
      numKvHeads: kw / headDim,
      headDim,
      rot: rope.rotaryDim,
      neox: rope.style === 'neox' ? 1 : 0,
      mscale: rope.mscale,
      v: write ? write.v.ptr : 0n,
      kCache: write ? write.cache.k.ptr : 0n,
      vCache: write ? write.cache.v.ptr : 0n,
      slotMapping: write ? s.slots : 0n,
    });
  }
}
