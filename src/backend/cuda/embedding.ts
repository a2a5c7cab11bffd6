import type { StepContext, Tensor } from '../backend.ts';
import { type CudaContext, stepOf } from './context.ts';
import { declareKernel } from './kernel.ts';
import { quantEmbedding } from './quant-linear.ts';
import { QuantCudaTensor } from './quant-tensor.ts';
import { cuda, rowsCols } from './tensor.ts';

// kernels/embedding.cu: one block per output row.
export const EMBEDDING = declareKernel('embedding', 'embedding', {
  out: 'ptr',
  table: 'ptr',
  index: 'ptr',
  hidden: 'i32',
});
export const GATHER_ROWS = declareKernel('embedding', 'gather_rows', {
  out: 'ptr',
  x: 'ptr',
  rows: 'ptr',
  cols: 'i32',
});

/**
 * Rows of `table` picked by the step's token ids (or positions: learned position embeddings; or token types); a
 * quantized table's rows dequantized as they are gathered.
 */
export function embedding(
  ctx: CudaContext,
  table: Tensor,
  step: StepContext,
  index: 'tokens' | 'positions' | 'tokenTypes',
): Tensor {
  const s = stepOf(step);
  const T = s.batch.inputIds.length;
  const ids = index === 'tokens' ? s.ids : index === 'positions' ? s.positions : s.tokenTypes;
  if (table instanceof QuantCudaTensor) return quantEmbedding(ctx, table, ids, T);
  const tab = cuda(table);
  const [, dim] = rowsCols(tab);
  const out = ctx.empty([T, dim]);
  if (T > 0)
    ctx.kernel(EMBEDDING).launch([T], ctx.rowThreads(dim), { out: out.ptr, table: tab.ptr, index: ids, hidden: dim });
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
    ctx.kernel(GATHER_ROWS).launch([rows], ctx.rowThreads(n), { out: out.ptr, x: xt.ptr, rows: s.logitRows, cols: n });
  return out;
}
