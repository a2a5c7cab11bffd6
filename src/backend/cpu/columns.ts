import { checkColumnSplit } from '../backend.ts';
import { CpuTensor, rowsCols } from './tensor.ts';

/** The rows of x `[T, n]` at `indices`, in that order → `[indices.length, n]`. */
export function pickRows(x: CpuTensor, indices: ArrayLike<number>): CpuTensor {
  const [, n] = rowsCols(x);
  const out = CpuTensor.zeros([indices.length, n]);
  for (let r = 0; r < indices.length; r++) {
    out.data.set(x.data.subarray(indices[r]! * n, (indices[r]! + 1) * n), r * n);
  }
  return out;
}

/** x `[T, sum(sizes)]` cut by columns into contiguous `[T, size_i]` copies. */
export function splitColumnsOf(x: CpuTensor, sizes: readonly number[]): CpuTensor[] {
  const [T, width] = rowsCols(x);
  checkColumnSplit(x.shape, sizes);
  let start = 0;
  return sizes.map((size) => {
    const part = CpuTensor.zeros([T, size]);
    for (let t = 0; t < T; t++) part.data.set(x.data.subarray(t * width + start, t * width + start + size), t * size);
    start += size;
    return part;
  });
}
