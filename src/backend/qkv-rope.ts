import type { Backend, Tensor } from './backend.ts';

/**
 * `Backend.qkvRopeWriteKv` as the ops it stands for: the packed projection, its split into q, k and v, then
 * `ropeWriteKv`. The CPU backend's op, and the CUDA backend's wherever its fused launch does not apply.
 */
export function composedQkvRopeWriteKv(
  b: Backend,
  ...[x, weight, bias, heads, rope, cache, step, norm]: Parameters<Backend['qkvRopeWriteKv']>
): [Tensor, Tensor, Tensor] {
  const kvDim = heads.numKvHeads * heads.headDim;
  const [q, k, v] = b.splitColumns(b.linear(x, weight, bias), [heads.numHeads * heads.headDim, kvDim, kvDim]);
  b.ropeWriteKv(q!, k!, v!, rope, cache, step, norm);
  return [q!, k!, v!];
}
