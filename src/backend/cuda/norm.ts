import type { Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import { cuda, rowsCols } from './tensor.ts';

export function rmsNorm(ctx: CudaContext, x: Tensor, weight: Tensor, eps: number): Tensor {
  const xt = ctx.own(x);
  const [rows, n] = rowsCols(xt);
  const out = ctx.empty(xt.shape);
  if (rows > 0) {
    ctx
      .kernel('norm', 'rms_norm', 'pppfi')
      .launch([rows], ctx.rowThreads(n), [out.ptr, xt.ptr, cuda(weight).ptr, eps, n]);
  }
  return out;
}

/** The residual comes back in float (any input dtype): the stream accumulates every layer's update unrounded. */
export function addRmsNorm(
  ctx: CudaContext,
  x: Tensor,
  residual: Tensor,
  weight: Tensor,
  eps: number,
): { out: Tensor; residual: Tensor } {
  const xt = ctx.own(x);
  const r = cuda(residual);
  const [rows, n] = rowsCols(xt);
  const out = ctx.empty(xt.shape);
  const res = ctx.empty(xt.shape, 'f32');
  if (rows > 0) {
    ctx
      .kernel('norm', 'add_rms_norm', 'pppppfi', { RES_IN_F32: r.dtype === 'f32' ? 1 : 0 })
      .launch([rows], ctx.rowThreads(n), [out.ptr, res.ptr, xt.ptr, r.ptr, cuda(weight).ptr, eps, n]);
  }
  return { out, residual: res };
}

export function layerNorm(ctx: CudaContext, x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  const xt = ctx.own(x);
  const [rows, n] = rowsCols(xt);
  const out = ctx.empty(xt.shape);
  if (rows > 0) {
    ctx
      .kernel('norm', 'layer_norm', 'ppppfi')
      .launch([rows], ctx.rowThreads(n), [out.ptr, xt.ptr, cuda(weight).ptr, cuda(bias).ptr, eps, n]);
  }
  return out;
}
