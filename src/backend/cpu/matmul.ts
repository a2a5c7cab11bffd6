/**
 * out[t, o] = Σ_i x[t, i] · w[o, i] (+ bias[o]): x `[T, n]`, w `[m, n]`, out `[T, m]`.
 * Register-blocked dot products with no allocation: decode (T = 1, the hot case) streams 8 rows of w against the
 * one x row; larger T takes 4 rows of w x 2 tokens so every load feeds several multiply-adds. Simple inner loops
 * measured faster in V8 than unrolling along i (about 2.4-3 GFLOP/s on one core; bench/RESULTS.md).
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
  linearRows(x, w, out, T, n, m, 0, m);
  if (bias) addBias(out, bias, T, m);
}

export function addBias(out: Float32Array, bias: Float32Array, T: number, m: number): void {
  for (let t = 0; t < T; t++) for (let o = 0; o < m; o++) out[t * m + o] += bias[o];
}

/** Output columns o0..o1 of the product (no bias): the share of one thread. */
export function linearRows(
  x: Float32Array,
  w: Float32Array,
  out: Float32Array,
  T: number,
  n: number,
  m: number,
  o0: number,
  o1: number,
): void {
  const blocked = T === 1 ? rows8(x, w, out, n, o0, o1) : rows4Tokens2(x, w, out, T, n, m, o0, o1);
  for (let o = blocked; o < o1; o++) {
    const wb = o * n;
    for (let t = 0; t < T; t++) {
      const xb = t * n;
      let a = 0;
      for (let i = 0; i < n; i++) a += x[xb + i] * w[wb + i];
      out[t * m + o] = a;
    }
  }
}

/** One token against 8 rows of w at a time, from row o0; returns the first row it did not cover. */
function rows8(x: Float32Array, w: Float32Array, out: Float32Array, n: number, o0: number, o1: number): number {
  let o = o0;
  for (; o + 8 <= o1; o += 8) {
    const w0 = o * n;
    const w1 = w0 + n;
    const w2 = w1 + n;
    const w3 = w2 + n;
    const w4 = w3 + n;
    const w5 = w4 + n;
    const w6 = w5 + n;
    const w7 = w6 + n;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let a4 = 0;
    let a5 = 0;
    let a6 = 0;
    let a7 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[i];
      a0 += xi * w[w0 + i];
      a1 += xi * w[w1 + i];
      a2 += xi * w[w2 + i];
      a3 += xi * w[w3 + i];
      a4 += xi * w[w4 + i];
      a5 += xi * w[w5 + i];
      a6 += xi * w[w6 + i];
      a7 += xi * w[w7 + i];
    }
    out[o] = a0;
    out[o + 1] = a1;
    out[o + 2] = a2;
    out[o + 3] = a3;
    out[o + 4] = a4;
    out[o + 5] = a5;
    out[o + 6] = a6;
    out[o + 7] = a7;
  }
  return o;
}

/** 4 rows of w x 2 tokens at a time (a lone last token takes the 4 rows alone); returns the first row left. */
function rows4Tokens2(
  x: Float32Array,
  w: Float32Array,
  out: Float32Array,
  T: number,
  n: number,
  m: number,
  o0: number,
  o1: number,
): number {
  let o = o0;
  for (; o + 4 <= o1; o += 4) {
    const w0 = o * n;
    const w1 = w0 + n;
    const w2 = w1 + n;
    const w3 = w2 + n;
    let t = 0;
    for (; t + 2 <= T; t += 2) {
      const xa = t * n;
      const xb = xa + n;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let b0 = 0;
      let b1 = 0;
      let b2 = 0;
      let b3 = 0;
      for (let i = 0; i < n; i++) {
        const p = x[xa + i];
        const q = x[xb + i];
        const u0 = w[w0 + i];
        const u1 = w[w1 + i];
        const u2 = w[w2 + i];
        const u3 = w[w3 + i];
        a0 += p * u0;
        a1 += p * u1;
        a2 += p * u2;
        a3 += p * u3;
        b0 += q * u0;
        b1 += q * u1;
        b2 += q * u2;
        b3 += q * u3;
      }
      const oa = t * m + o;
      const ob = oa + m;
      out[oa] = a0;
      out[oa + 1] = a1;
      out[oa + 2] = a2;
      out[oa + 3] = a3;
      out[ob] = b0;
      out[ob + 1] = b1;
      out[ob + 2] = b2;
      out[ob + 3] = b3;
    }
    if (t < T) {
      const xa = t * n;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let i = 0; i < n; i++) {
        const p = x[xa + i];
        a0 += p * w[w0 + i];
        a1 += p * w[w1 + i];
        a2 += p * w[w2 + i];
        a3 += p * w[w3 + i];
      }
      const oa = t * m + o;
      out[oa] = a0;
      out[oa + 1] = a1;
      out[oa + 2] = a2;
      out[oa + 3] = a3;
    }
  }
  return o;
}
