import type { Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import { declareKernel } from './kernel.ts';
import { CudaTensor, cuda, rowsCols } from './tensor.ts';
import { allocQuantizedX, type QuantizedX, type XForm, xFormDefines } from './x-form.ts';

// kernels/norm.cu: one block per row of `hidden` elements (CudaContext.rowThreads); W_OFFSET = 1 scales by (1 + w).
// The RMSNorms built with XQ also write their output quantized (x-form.ts) at xq / xs (null in the plain build).
export const RMS_NORM = declareKernel('norm', 'rms_norm', {
  out: 'ptr',
  x: 'ptr',
  w: 'ptr',
  eps: 'f32',
  hidden: 'i32',
  xq: 'ptr',
  xs: 'ptr',
});
/** RES_IN_F32 = 1: the residual read is the float stream (0: the embeddings, stored as T). */
export const ADD_RMS_NORM = declareKernel('norm', 'add_rms_norm', {
  out: 'ptr',
  residualOut: 'ptr',
  x: 'ptr',
  residual: 'ptr',
  w: 'ptr',
  eps: 'f32',
  hidden: 'i32',
  xq: 'ptr',
  xs: 'ptr',
});
export const LAYER_NORM = declareKernel('norm', 'layer_norm', {
  out: 'ptr',
  x: 'ptr',
  w: 'ptr',
  b: 'ptr',
  eps: 'f32',
  hidden: 'i32',
});

/** The defines of a weight offset: none for 0, W_OFFSET for Gemma's 1 (kernels/norm.cu). */
export function offsetDefines(weightOffset: number): Record<string, number> {
  if (weightOffset !== 0 && weightOffset !== 1) throw new Error(`rmsNorm: weight offset ${weightOffset} is not 0 or 1`);
  return weightOffset ? { W_OFFSET: 1 } : {};
}

/**
 * The output tensor of an RMSNorm over `[rows, n]`, with room for its quantized copy when `form` asks for one (the
 * linear it feeds reads x so: CudaLinear.inputForm).
 */
function normOutput(ctx: CudaContext, shape: readonly number[], form: XForm | null): CudaTensor {
  const out = ctx.empty(shape);
  const [rows, n] = rowsCols(out);
  if (!form || rows === 0) return out;
  return new CudaTensor(out.shape, out.dtype, out.ptr, allocQuantizedX(ctx, form, rows, n));
}

/** The kernel arguments of the quantized copy (0n: the plain build writes none). */
const sink = (q: QuantizedX | undefined) => ({ xq: q?.xq ?? 0n, xs: q?.xs ?? 0n });

/** `form`: also write the output as the linear it feeds reads it (kernels/norm.cu XQ), in one launch. */
export function rmsNorm(
  ctx: CudaContext,
  x: Tensor,
  weight: Tensor,
  eps: number,
  weightOffset = 0,
  form: XForm | null = null,
): Tensor {
  const xt = ctx.own(x);
  const [rows, n] = rowsCols(xt);
  const out = normOutput(ctx, xt.shape, form);
  if (rows > 0) {
    const defines = { ...offsetDefines(weightOffset), ...xFormDefines(form) };
    ctx.kernel(RMS_NORM, defines).launch([rows], ctx.rowThreads(n), {
      out: out.ptr,
      x: xt.ptr,
      w: cuda(weight).ptr,
      eps,
      hidden: n,
      ...sink(out.quantized),
    });
  }
  return out;
}

/**
 * The residual comes back in float (any input dtype): the stream accumulates every layer's update unrounded.
 * `form` as rmsNorm's.
 */
export function addRmsNorm(
  ctx: CudaContext,
  x: Tensor,
  residual: Tensor,
  weight: Tensor,
  eps: number,
  weightOffset = 0,
  form: XForm | null = null,
): { out: Tensor; residual: Tensor } {
  const xt = ctx.own(x);
  const r = cuda(residual);
  const [rows, n] = rowsCols(xt);
  const out = normOutput(ctx, xt.shape, form);
  const res = ctx.empty(xt.shape, 'f32');
  if (rows > 0) {
    const defines = { RES_IN_F32: r.dtype === 'f32' ? 1 : 0, ...offsetDefines(weightOffset), ...xFormDefines(form) };
    ctx.kernel(ADD_RMS_NORM, defines).launch([rows], ctx.rowThreads(n), {
      out: out.ptr,
      residualOut: res.ptr,
      x: xt.ptr,
      residual: r.ptr,
      w: cuda(weight).ptr,
      eps,
      hidden: n,
      ...sink(out.quantized),
    });
  }
  return { out, residual: res };
}

export function layerNorm(ctx: CudaContext, x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  const xt = ctx.own(x);
  const [rows, n] = rowsCols(xt);
  const out = ctx.empty(xt.shape);
  if (rows > 0) {
    ctx.kernel(LAYER_NORM).launch([rows], ctx.rowThreads(n), {
      out: out.ptr,
      x: xt.ptr,
      w: cuda(weight).ptr,
      b: cuda(bias).ptr,
      eps,
      hidden: n,
    });
  }
  return out;
}
