import type { Backend, QkvHeads, Tensor } from '../backend.ts';
import type { HeadNorm } from '../rope-spec.ts';
import { type CudaContext, stepOf } from './context.ts';
import { type GemvConfig, type GemvShape, gemvBlocks, gemvShape, pickGemvConfig } from './gemv-config.ts';
import { declareKernel } from './kernel.ts';
import { type CudaLayerKv, kvOf } from './kv-cache.ts';
import { type CudaLinear, gemvDefines } from './linear.ts';
import type { CudaRope } from './rope.ts';
import { CudaTensor, cuda, rowsCols } from './tensor.ts';

/**
 * kernels/gemv.cu's ROPE build: the packed q/k/v GEMV (+ bias, null: none) that writes q, k and v, q and k rotated at
 * the step's positions, and k and v to the cache at the step's slots.
 */
export const GEMV_ROPE = declareKernel('gemv', 'gemv_rope', {
  q: 'ptr',
  k: 'ptr',
  v: 'ptr',
  x: 'ptr',
  w: 'ptr',
  bias: 'ptr',
  rows: 'i32',
  kdim: 'i32',
  positions: 'ptr',
  invFreq: 'ptr',
  numQHeads: 'i32',
  numKvHeads: 'i32',
  headDim: 'i32',
  rot: 'i32',
  neox: 'i32',
  mscale: 'f32',
  kCache: 'ptr',
  vCache: 'ptr',
  slotMapping: 'ptr',
});

/**
 * The ROPE build for the plain q/k/v GEMV's shape and configuration: its SPLIT (each row's sum added in the same
 * order) and loop; a group reads a rotation pair's two rows (gemv.cu sets ROWS 2).
 */
export function gemvRopeDefines(shape: GemvShape, cfg: GemvConfig): Record<string, number> {
  return { ...gemvDefines(shape, { ...cfg, rows: 1 }), ROPE: 1 };
}

/** The packed q/k/v projection, RoPE and the KV cache write of decode rows in one launch (gemv.cu's ROPE build). */
export class CudaQkvRope {
  constructor(
    private readonly ctx: CudaContext,
    private readonly linears: CudaLinear,
    private readonly rotary: CudaRope,
  ) {}

  /** Backend.qkvRopeWriteKv in one launch, or null where `fuses` says the composition must run. */
  tryFused(
    ...[x, weight, bias, heads, rope, cache, step, norm]: Parameters<Backend['qkvRopeWriteKv']>
  ): [Tensor, Tensor, Tensor] | null {
    const xt = this.ctx.own(x);
    const kv = kvOf(cache);
    if (!this.fuses(xt, weight, heads, kv, norm)) return null;
    const ctx = this.ctx;
    const s = stepOf(step);
    const [T, K] = rowsCols(xt);
    const { numHeads: Hq, numKvHeads: Hk, headDim: D } = heads;
    const [q, k, v] = [ctx.empty([T, Hq * D]), ctx.empty([T, Hk * D]), ctx.empty([T, Hk * D])];
    const shape = gemvShape(T, (Hq + 2 * Hk) * D, K, false);
    const cfg = pickGemvConfig(this.linears.gemvTable, shape, ctx.drv.info);
    ctx.arena.markLayer();
    ctx.kernel(GEMV_ROPE, gemvRopeDefines(shape, cfg)).launch([gemvBlocks(shape, { ...cfg, rows: 2 })], [256], {
      q: q.ptr,
      k: k.ptr,
      v: v.ptr,
      x: xt.ptr,
      w: cuda(weight).ptr,
      bias: bias ? ctx.own(bias).ptr : 0n,
      rows: T,
      kdim: K,
      positions: s.positions,
      invFreq: this.rotary.invFreqOf(rope),
      numQHeads: Hq,
      numKvHeads: Hk,
      headDim: D,
      rot: rope.rotaryDim,
      neox: rope.style === 'neox' ? 1 : 0,
      mscale: rope.mscale,
      kCache: kv.k.ptr,
      vCache: kv.v.ptr,
      slotMapping: s.slots,
    });
    return [q, k, v];
  }

  /**
   * Where the fused launch gives what the composition gives: rows the plain linear would run through the GEMV (not
   * cuBLASLt), a plain weight in the compute type (no FP8 or GGUF form, so no input form of x either) of the heads'
   * rows, a 16-bit cache of the heads' size (a quantized one has its own write kernel), no head norm (rope.cu's).
   */
  private fuses(x: CudaTensor, weight: Tensor, heads: QkvHeads, kv: CudaLayerKv, norm?: HeadNorm): boolean {
    const [T, K] = rowsCols(x);
    const m = (heads.numHeads + 2 * heads.numKvHeads) * heads.headDim;
    return (
      T > 0 &&
      weight instanceof CudaTensor &&
      weight.dtype === this.ctx.dtype &&
      weight.shape[0] === m &&
      weight.shape[1] === K &&
      this.linears.gemvFits(T, m, K, false) &&
      !kv.quant &&
      kv.shape[2] === heads.numKvHeads &&
      kv.shape[3] === heads.headDim &&
      heads.headDim % 2 === 0 &&
      norm === undefined
    );
  }
}
