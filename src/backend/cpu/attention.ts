import type { StepBatch } from '../../runner/step-batch.ts';
import type { AttentionSpec } from '../backend.ts';

/** Cache geometry: K and V each `[numBlocks, blockSize, numKvHeads, headDim]`. */
export interface PagedKv {
  k: Float32Array;
  v: Float32Array;
  numKvHeads: number;
  headDim: number;
}

/** Writes token t's k/v rows `[T, Hk * D]` to cache slot slotMapping[t]; slot -1 is padding and skipped. */
export function writeKvCache(k: Float32Array, v: Float32Array, cache: PagedKv, slotMapping: Int32Array): void {
  const row = cache.numKvHeads * cache.headDim;
  for (let t = 0; t < slotMapping.length; t++) {
    const slot = slotMapping[t];
    if (slot < 0) continue;
    cache.k.set(k.subarray(t * row, (t + 1) * row), slot * row);
    cache.v.set(v.subarray(t * row, (t + 1) * row), slot * row);
  }
}

/**
 * Causal paged attention over a varlen batch. Sequence s owns query rows cuSeqlensQ[s]..cuSeqlensQ[s+1] and
 * contextLens[s] keys; key j sits at position j, so the chunk's i-th query (position contextLens - qLen + i) sees
 * keys 0..that position, or only the last `slidingWindow` of them. Two-pass softmax with scores and sums in f64.
 * Query head h reads KV head h / (Hq / Hk) (GQA). Writes out `[T, Hq * D]`.
 */
export function pagedAttention(
  q: Float32Array,
  cache: PagedKv,
  spec: AttentionSpec,
  batch: StepBatch,
  out: Float32Array,
): void {
  const { numHeads: Hq, numKvHeads: Hk, headDim: D, scale, slidingWindow } = spec;
  const group = Hq / Hk;
  const bs = batch.blockSize;
  const kvRow = Hk * D;
  let maxCtx = 0;
  for (let s = 0; s < batch.numSeqs; s++) maxCtx = Math.max(maxCtx, batch.contextLens[s]);
  const scores = new Float64Array(maxCtx);
  const rowBase = new Int32Array(maxCtx);
  const acc = new Float64Array(D);
  for (let s = 0; s < batch.numSeqs; s++) {
    const qStart = batch.cuSeqlensQ[s];
    const qLen = batch.cuSeqlensQ[s + 1] - qStart;
    const ctx = batch.contextLens[s];
    const table = s * batch.maxBlocksPerSeq;
    // Where each key's row starts in the cache (before adding the KV head offset).
    for (let j = 0; j < ctx; j++) {
      rowBase[j] = (batch.blockTables[table + Math.floor(j / bs)] * bs + (j % bs)) * kvRow;
    }
    for (let i = 0; i < qLen; i++) {
      const pos = ctx - qLen + i;
      const first = slidingWindow > 0 ? Math.max(0, pos - slidingWindow + 1) : 0;
      const t = qStart + i;
      for (let h = 0; h < Hq; h++) {
        const qb = (t * Hq + h) * D;
        const kvOff = Math.floor(h / group) * D;
        let max = Number.NEGATIVE_INFINITY;
        for (let j = first; j <= pos; j++) {
          const kb = rowBase[j] + kvOff;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qb + d] * cache.k[kb + d];
          dot *= scale;
          scores[j] = dot;
          if (dot > max) max = dot;
        }
        let sum = 0;
        acc.fill(0);
        for (let j = first; j <= pos; j++) {
          const p = Math.exp(scores[j] - max);
          sum += p;
          const vb = rowBase[j] + kvOff;
          for (let d = 0; d < D; d++) acc[d] += p * cache.v[vb + d];
        }
        for (let d = 0; d < D; d++) out[qb + d] = acc[d] / sum;
      }
    }
  }
}
