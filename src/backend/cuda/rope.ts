import type { LayerKvCache, RopeSpec, StepContext, Tensor } from '../backend.ts';
import { type CudaContext, stepOf } from './context.ts';
import type { DevPtr } from './driver.ts';
import { type CudaLayerKv, kvOf } from './kv-cache.ts';
import { type CudaTensor, cuda, rowsCols } from './tensor.ts';

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
    this.ctx.arena.markLayer();
    this.launchRope(q, k, kv.k.shape[3]!, rope, step, { v: cuda(v), cache: kv });
  }

  /** k and v of the step's tokens into their cache slots (models without RoPE; slot -1 is skipped). */
  writeKv(k: Tensor, v: Tensor, cache: LayerKvCache, step: StepContext): void {
    const s = stepOf(step);
    const kt = cuda(k);
    const [T, row] = rowsCols(kt);
    if (T === 0) return;
    const c = kvOf(cache);
    this.ctx.arena.markLayer();
    this.ctx
      .kernel('kv_cache', 'reshape_and_cache', 'pppppi')
      .launch([T], this.ctx.rowThreads(row), [kt.ptr, cuda(v).ptr, c.k.ptr, c.v.ptr, s.slots, row]);
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
    this.ctx
      .kernel('rope', 'rope', 'ppppiiiiifpppp')
      .launch(
        [T],
        [Math.min(512, Math.max(32, Math.ceil(Math.max(pairs, write ? kw : 0) / 32) * 32))],
        [
          qt.ptr,
          kt.ptr,
          s.positions,
          inv,
          qw / headDim,
          kw / headDim,
          headDim,
          rope.rotaryDim,
          rope.style === 'neox' ? 1 : 0,
          rope.mscale,
          write ? write.v.ptr : 0n,
          write ? write.cache.k.ptr : 0n,
          write ? write.cache.v.ptr : 0n,
          write ? s.slots : 0n,
        ],
      );
  }
}
