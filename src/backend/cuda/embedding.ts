import type { StepContext, Tensor } from '../backend.ts';
import { type CudaContext, stepOf } from './context.ts';
import { cuda, rowsCols } from './tensor.ts';

/** Rows of `table` picked by the step's token ids (or positions: learned position embeddings). */
export function embedding(ctx: CudaContext, table: Tensor, step: StepContext, index: 'tokens' | 'positions'): Tensor {
  const tab = cuda(table);
  const s = stepOf(step);
  const [, dim] = rowsCols(tab);
  const T = s.batch.inputIds.length;
  const out = ctx.empty([T, dim]);
  if (T > 0) {
    ctx
      .kernel('embedding', 'embedding', 'pppi')
      .launch([T], ctx.rowThreads(dim), [out.ptr, tab.ptr, index === 'tokens' ? s.ids : s.positions, dim]);
  }
  return out;
}

/** The rows of x whose logits the step returns (`batch.logitsIndices`). */
export function gatherLogitRows(ctx: CudaContext, x: Tensor, step: StepContext): Tensor {
  const s = stepOf(step);
  const xt = ctx.own(x);
  const [, n] = rowsCols(xt);
  const rows = s.batch.logitsIndices.length;
  const out = ctx.empty([rows, n]);
  if (rows > 0)
    ctx.kernel('embedding', 'gather_rows', 'pppi').launch([rows], ctx.rowThreads(n), [out.ptr, xt.ptr, s.logitRows, n]);
  return out;
}
