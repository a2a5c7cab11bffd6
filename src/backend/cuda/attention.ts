import type { AttentionSpec, DType } from '../backend.ts';
import type { KernelModules } from './modules.ts';
import type { CudaStepContext } from './step-buffers.ts';
import { type CudaTensor, DTYPE_DEFINE } from './tensor.ts';

const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/**
 * The first, simple paged attention (kernels/attention.cu) for prefill and decode: causal over each sequence's
 * cached keys, GQA, sliding window. Kept in its own file so a faster kernel can take its place.
 */
export function launchPagedAttention(
  mods: KernelModules,
  dtype: DType,
  out: CudaTensor,
  q: CudaTensor,
  k: CudaTensor,
  v: CudaTensor,
  spec: AttentionSpec,
  step: CudaStepContext,
): void {
  const { numHeads, numKvHeads, headDim, scale, slidingWindow } = spec;
  const T = step.batch.inputIds.length;
  if (T === 0) return;
  const group = numHeads / numKvHeads;
  if (!Number.isInteger(group) || group > 16 || headDim > 256) {
    throw new Error(`attention: ${numHeads} query heads over ${numKvHeads} KV heads of size ${headDim} not supported`);
  }
  const kernel = mods.get('attention', 'paged_attention', 'pppppppiiiiiifi', {
    PAGODA_DTYPE: DTYPE_DEFINE[dtype],
    EPL: pow2(Math.ceil(headDim / 32)),
    GMAX: pow2(group),
  });
  kernel.launch(
    [numKvHeads, T],
    [128],
    [
      out.ptr,
      q.ptr,
      k.ptr,
      v.ptr,
      step.cuSeqlensQ,
      step.contextLens,
      step.blockTables,
      step.batch.numSeqs,
      step.tableWidth,
      step.batch.blockSize,
      numHeads,
      numKvHeads,
      headDim,
      scale,
      slidingWindow,
    ],
  );
}
