import type { PoolingMode } from '../../primitives/pooling.ts';

/**
 * One row per sequence of x `[T, n]`: sequence s owns rows cuSeqlens[s]..cuSeqlens[s+1] (sentence-transformers'
 * pooling over the tokens the attention mask keeps; sums in f64). out is `[numSeqs, n]`.
 */
export function poolRows(x: Float32Array, n: number, cuSeqlens: Int32Array, mode: PoolingMode, out: Float32Array) {
  const acc = new Float64Array(n);
  for (let s = 0; s + 1 < cuSeqlens.length; s++) {
    const start = cuSeqlens[s];
    const len = cuSeqlens[s + 1] - start;
    const o = s * n;
    if (len <= 0) throw new Error(`pool: sequence ${s} has no tokens`);
    if (mode === 'cls' || mode === 'last') {
      const row = (mode === 'cls' ? start : start + len - 1) * n;
      out.set(x.subarray(row, row + n), o);
      continue;
    }
    if (mode === 'max') {
      out.fill(Number.NEGATIVE_INFINITY, o, o + n);
      for (let t = start; t < start + len; t++) {
        for (let i = 0; i < n; i++) if (x[t * n + i] > out[o + i]) out[o + i] = x[t * n + i];
      }
      continue;
    }
    acc.fill(0);
    let weights = 0;
    for (let t = 0; t < len; t++) {
      const w = mode === 'weighted_mean' ? t + 1 : 1;
      weights += w;
      const row = (start + t) * n;
      for (let i = 0; i < n; i++) acc[i] += w * x[row + i];
    }
    const div = mode === 'mean_sqrt_len' ? Math.sqrt(len) : weights;
    for (let i = 0; i < n; i++) out[o + i] = acc[i] / div;
  }
}

/** Each row of x `[rows, n]` over max(its L2 norm, 1e-12), as torch's F.normalize. */
export function l2NormalizeRows(x: Float32Array, n: number, out: Float32Array): void {
  for (let r = 0; r * n < x.length; r++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[r * n + i] * x[r * n + i];
    const inv = 1 / Math.max(Math.sqrt(ss), 1e-12);
    for (let i = 0; i < n; i++) out[r * n + i] = x[r * n + i] * inv;
  }
}
