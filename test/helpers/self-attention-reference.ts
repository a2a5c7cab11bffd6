import type { AttentionSpec, PoolingMode } from '../../src/backend/backend.ts';

/**
 * Float64 attention with no cache: sequence s's queries (rows cuSeqlens[s]..cuSeqlens[s+1] of q `[T, Hq*D]`) over
 * the same rows of k and v `[T, Hk*D]`; query i sees keys 0..i, or all of its sequence when `spec.causal` is false.
 */
export function referenceSelfAttention(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  cuSeqlens: ArrayLike<number>,
  spec: AttentionSpec,
): Float64Array {
  const { numHeads: Hq, numKvHeads: Hk, headDim: D, scale } = spec;
  const out = new Float64Array(q.length);
  for (let s = 0; s + 1 < cuSeqlens.length; s++) {
    const start = cuSeqlens[s]!;
    const len = cuSeqlens[s + 1]! - start;
    for (let i = 0; i < len; i++) {
      const last = spec.causal === false ? len - 1 : i;
      for (let h = 0; h < Hq; h++) {
        const kvh = Math.floor(h / (Hq / Hk));
        const qOff = ((start + i) * Hq + h) * D;
        const scores: number[] = [];
        for (let j = 0; j <= last; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qOff + d]! * k[((start + j) * Hk + kvh) * D + d]!;
          scores.push(dot * scale);
        }
        const max = Math.max(...scores);
        const w = scores.map((x) => Math.exp(x - max));
        const z = w.reduce((a, b) => a + b, 0);
        w.forEach((p, j) => {
          for (let d = 0; d < D; d++) out[qOff + d] += (p / z) * v[((start + j) * Hk + kvh) * D + d]!;
        });
      }
    }
  }
  return out;
}

/** Float64 pooling of each sequence's rows of x `[T, n]` (sentence-transformers' definitions). */
export function referencePool(x: ArrayLike<number>, n: number, cuSeqlens: ArrayLike<number>, mode: PoolingMode) {
  const seqs = cuSeqlens.length - 1;
  const out = new Float64Array(seqs * n);
  for (let s = 0; s < seqs; s++) {
    const start = cuSeqlens[s]!;
    const len = cuSeqlens[s + 1]! - start;
    for (let c = 0; c < n; c++) {
      const col = Array.from({ length: len }, (_, t) => x[(start + t) * n + c]!);
      const weights = col.map((_, t) => (mode === 'weighted_mean' ? t + 1 : 1));
      const sum = col.reduce((a, v, t) => a + weights[t]! * v, 0);
      const value = {
        cls: col[0]!,
        last: col[len - 1]!,
        max: Math.max(...col),
        mean: sum / len,
        mean_sqrt_len: sum / Math.sqrt(len),
        weighted_mean: sum / weights.reduce((a, w) => a + w, 0),
      }[mode];
      out[s * n + c] = value;
    }
  }
  return out;
}
