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
  // Typed scratch and hoisted offsets (the GPU tests call this on 600-token sequences); the arithmetic and its order
  // are the plain definition's.
  const scores = new Float64Array(cuSeqlens[cuSeqlens.length - 1] ?? 0); // the longest sequence fits in all rows
  for (let s = 0; s + 1 < cuSeqlens.length; s++) {
    const start = cuSeqlens[s]!;
    const len = cuSeqlens[s + 1]! - start;
    for (let i = 0; i < len; i++) {
      const last = spec.causal === false ? len - 1 : i;
      for (let h = 0; h < Hq; h++) {
        const kvh = Math.floor(h / (Hq / Hk));
        const qOff = ((start + i) * Hq + h) * D;
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j <= last; j++) {
          const kOff = ((start + j) * Hk + kvh) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qOff + d]! * k[kOff + d]!;
          scores[j] = dot * scale;
          if (scores[j]! > max) max = scores[j]!;
        }
        let z = 0;
        for (let j = 0; j <= last; j++) {
          scores[j] = Math.exp(scores[j]! - max);
          z += scores[j]!;
        }
        for (let j = 0; j <= last; j++) {
          const p = scores[j]! / z;
          const vOff = ((start + j) * Hk + kvh) * D;
          for (let d = 0; d < D; d++) out[qOff + d] += p * v[vOff + d]!;
        }
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
