/**
 * out[t, o] = Σ_i x[t, i] · w[o, i] (+ bias[o]): x `[T, n]`, w `[m, n]`, out `[T, m]`.
 * Rows of w are taken four at a time so each load of x feeds four dot products; the inner loop is unrolled by four
 * with separate accumulators. Decode (T = 1) is the hot case: the loop streams w exactly once.
 */
export function linearF32(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  out: Float32Array,
  T: number,
  n: number,
  m: number,
): void {
  const n4 = n - (n % 4);
  let o = 0;
  for (; o + 4 <= m; o += 4) {
    const w0 = o * n;
    const w1 = w0 + n;
    const w2 = w1 + n;
    const w3 = w2 + n;
    for (let t = 0; t < T; t++) {
      const xb = t * n;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let b0 = 0;
      let b1 = 0;
      let b2 = 0;
      let b3 = 0;
      let i = 0;
      for (; i < n4; i += 4) {
        const x0 = x[xb + i];
        const x1 = x[xb + i + 1];
        const x2 = x[xb + i + 2];
        const x3 = x[xb + i + 3];
        a0 += x0 * w[w0 + i] + x1 * w[w0 + i + 1];
        b0 += x2 * w[w0 + i + 2] + x3 * w[w0 + i + 3];
        a1 += x0 * w[w1 + i] + x1 * w[w1 + i + 1];
        b1 += x2 * w[w1 + i + 2] + x3 * w[w1 + i + 3];
        a2 += x0 * w[w2 + i] + x1 * w[w2 + i + 1];
        b2 += x2 * w[w2 + i + 2] + x3 * w[w2 + i + 3];
        a3 += x0 * w[w3 + i] + x1 * w[w3 + i + 1];
        b3 += x2 * w[w3 + i + 2] + x3 * w[w3 + i + 3];
      }
      for (; i < n; i++) {
        const xi = x[xb + i];
        a0 += xi * w[w0 + i];
        a1 += xi * w[w1 + i];
        a2 += xi * w[w2 + i];
        a3 += xi * w[w3 + i];
      }
      const ob = t * m + o;
      out[ob] = a0 + b0 + (bias ? bias[o] : 0);
      out[ob + 1] = a1 + b1 + (bias ? bias[o + 1] : 0);
      out[ob + 2] = a2 + b2 + (bias ? bias[o + 2] : 0);
      out[ob + 3] = a3 + b3 + (bias ? bias[o + 3] : 0);
    }
  }
  for (; o < m; o++) {
    const wb = o * n;
    for (let t = 0; t < T; t++) {
      const xb = t * n;
      let a = 0;
      for (let i = 0; i < n; i++) a += x[xb + i] * w[wb + i];
      out[t * m + o] = a + (bias ? bias[o] : 0);
    }
  }
}
