import { POOLING_MODES } from '../../primitives/pooling.ts';
import type { PoolingMode, StepContext, Tensor } from '../backend.ts';
import { type CudaContext, stepOf } from './context.ts';
import { declareKernel } from './kernel.ts';
import { rowsCols } from './tensor.ts';

// kernels/pooling.cu: `mode` numbers the modes in POOLING_MODES order.
export const POOL_ROWS = declareKernel('pooling', 'pool_rows', {
  out: 'ptr',
  x: 'ptr',
  cuSeqlens: 'ptr',
  hidden: 'i32',
  mode: 'i32',
});
export const L2_NORMALIZE = declareKernel('pooling', 'l2_normalize', { out: 'ptr', x: 'ptr', hidden: 'i32' });

/** One row per sequence of the step: its rows of x pooled (a block per sequence and 256 columns). */
export function pool(ctx: CudaContext, x: Tensor, step: StepContext, mode: PoolingMode): Tensor {
  const xt = ctx.own(x);
  const s = stepOf(step);
  const [, hidden] = rowsCols(xt);
  const seqs = s.batch.numSeqs;
  const out = ctx.empty([seqs, hidden]);
  if (seqs > 0) {
    ctx.kernel(POOL_ROWS).launch([seqs, Math.ceil(hidden / 256)], [256], {
      out: out.ptr,
      x: xt.ptr,
      cuSeqlens: s.cuSeqlensQ,
      hidden,
      mode: POOLING_MODES.indexOf(mode),
    });
  }
  return out;
}

/** Each row over its L2 norm (one block per row). */
export function l2Normalize(ctx: CudaContext, x: Tensor): Tensor {
  const xt = ctx.own(x);
  const [rows, hidden] = rowsCols(xt);
  const out = ctx.empty(xt.shape);
  if (rows > 0) ctx.kernel(L2_NORMALIZE).launch([rows], ctx.rowThreads(hidden), { out: out.ptr, x: xt.ptr, hidden });
  return out;
}
