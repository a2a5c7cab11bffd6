import type { DType, Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import { declareKernel } from './kernel.ts';
import { cuda, rowsCols } from './tensor.ts';
import { quantizedOutput, type XForm, xFormArgs, xFormDefines } from './x-form.ts';

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
/**
 * RES_IN_F32 = 1: the residual read is the float stream (residualDefines). NORM_X = 1: x is first normalized by xw
 * (null in the plain build).
 */
export const ADD_RMS_NORM = declareKernel('norm', 'add_rms_norm', {
  out: 'ptr',
  residualOut: 'ptr',
  x: 'ptr',
  residual: 'ptr',
  w: 'ptr',
  xw: 'ptr',
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
 * The define of add_rms_norm's residual input (kernels/norm.cu RES_IN_F32): RES_IN_F32 for the float stream beside
 * 16-bit storage; none for a residual stored as T (the embeddings; any residual of a float32 model: the same code),
 * which rms_norm's module serves.
 */
export function residualDefines(residual: DType, storage: DType): Record<string, number> {
  return residual === 'f32' && storage !== 'f32' ? { RES_IN_F32: 1 } : {};
}

/** The define of add_rms_norm's build that first normalizes x (kernels/norm.cu NORM_X): none for the plain build. */
export function normXDefines(normX: boolean): Record<string, number> {
  return normX ? { NORM_X: 1 } : {};
}

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
  const out = quantizedOutput(ctx, xt.shape, form);
  if (rows > 0) {
    const defines = { ...offsetDefines(weightOffset), ...xFormDefines(form) };
    ctx.kernel(RMS_NORM, defines).launch([rows], ctx.rowThreads(n), {
      out: out.ptr,
      x: xt.ptr,
      w: cuda(weight).ptr,
      eps,
      hidden: n,
      ...xFormArgs(out.quantized),
    });
  }
  return out;
}

/**
 * The residual comes back in float (any input dtype): the stream accumulates every layer's update unrounded.
 * `form` as rmsNorm's. `xWeight`: x is first rmsNorm(x, xWeight) (same eps and offset), rounded to the storage type
 * as rmsNorm's output is, in the same launch (kernels/norm.cu NORM_X).
 */
export function addRmsNorm(
  ctx: CudaContext,
  x: Tensor,
  residual: Tensor,
  weight: Tensor,
  eps: number,
  weightOffset = 0,
  form: XForm | null = null,
  xWeight: Tensor | null = null,
): { out: Tensor; residual: Tensor } {
  const xt = ctx.own(x);
  const r = cuda(residual);
  const [rows, n] = rowsCols(xt);
  const out = quantizedOutput(ctx, xt.shape, form);
  const res = ctx.empty(xt.shape, 'f32');
  if (rows > 0) {
    const defines = {
      ...residualDefines(r.dtype, ctx.dtype),
      ...normXDefines(xWeight !== null),
      ...offsetDefines(weightOffset),
      ...xFormDefines(form),
    };
    ctx.kernel(ADD_RMS_NORM, defines).launch([rows], ctx.rowThreads(n), {
      out: out.ptr,
      residualOut: res.ptr,
      x: xt.ptr,
      residual: r.ptr,
      w: cuda(weight).ptr,
      xw: xWeight ? cuda(xWeight).ptr : 0n,
      eps,
      hidden: n,
      ...xFormArgs(out.quantized),
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
