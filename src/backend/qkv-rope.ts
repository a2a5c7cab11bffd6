import type { Backend, LayerKvCache, QkvHeads, StepContext, Tensor } from './backend.ts';
import type { HeadNorm, RopeSpec } from './rope-spec.ts';

/**
 * `Backend.qkvRopeWriteKv` as the ops it stands for: the packed projection, its split into q, k and v, then
 * `ropeWriteKv`. The CPU backend's op, and the CUDA backend's wherever its fused launch does not apply.
 */
export function composedQkvRopeWriteKv(
  b: Backend,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  heads: QkvHeads,
  rope: RopeSpec,
  cache: LayerKvCache,
  step: StepContext,
  norm?: HeadNorm,
): [Tensor, Tensor, Tensor] {
  const kvDim = heads.numKvHeads * heads.headDim;
  const [q, k, v] = b.splitColumns(b.linear(x, weight, bias), [heads.numHeads * heads.headDim, kvDim, kvDim]);
  b.ropeWriteKv(q!, k!, v!, rope, cache, step, norm);
  return [q!, k!, v!];
}
