import type { StepBatch } from '../../primitives/step-batch.ts';
import type { AttentionSpec } from '../backend.ts';
import { f32Plane, type KvPlane, rowsOf, writeRows } from './kv-store.ts';

/** The parts of a step's plan attention reads. */
export type AttentionBatch = Pick<
  StepBatch,
  'numSeqs' | 'cuSeqlensQ' | 'contextLens' | 'blockTables' | 'maxBlocksPerSeq' | 'blockSize'
>;

/** Cache geometry: K and V each `[numBlocks, blockSize, numKvHeads, headDim]` values, stored as kv-store.ts says. */
export interface PagedKv {
  k: KvPlane;
  v: KvPlane;
  numKvHeads: number;
  headDim: number;
}

/** Writes token t's k/v rows `[T, Hk * D]` to cache slot slotMapping[t]; slot -1 is padding and skipped. */
export function writeKvCache(k: Float32Array, v: Float32Array, cache: PagedKv, slotMapping: Int32Array): void {
  const row = cache.numKvHeads * cache.headDim;
  writeRows(cache.k, k, slotMapping, row);
  writeRows(cache.v, v, slotMapping, row);
}

/** Dequantized K and V rows of a quantized cache, reused across calls (each worker thread has its own). */
const scratchK = { values: new Float32Array(0) };
const scratchV = { values: new Float32Array(0) };

/** Cache slot of each of a sequence's `ctx` keys, from its block table starting at `table`. */
export function keySlots(batch: AttentionBatch, table: number, ctx: number, slots: Int32Array): void {
  const bs = batch.blockSize;
  for (let j = 0; j < ctx; j++) slots[j] = batch.blockTables[table + Math.floor(j / bs)]! * bs + (j % bs);
}

/**
 * Paged attention over a varlen batch. Sequence s owns query rows cuSeqlensQ[s]..cuSeqlensQ[s+1] and
 * contextLens[s] keys; key j sits at position j, so the chunk's i-th query (position contextLens - qLen + i) sees
 * keys 0..that position, or only the last `slidingWindow` of them; with `spec.causal` false it sees all of them
 * (encoders). Scores are soft-capped first where `spec.softcap` is set. Two-pass softmax with scores and sums in f64.
 * Query head h reads KV head h / (Hq / Hk) (GQA). Writes out `[T, Hq * D]` for query heads h0..h1 (a thread's
 * share; all by default) and, given `lse` `[T, Hq]`, each row's log-sum-exp of its scaled scores. A quantized cache is
 * read through a dequantized copy of the rows and KV heads this share reads.
 */
export function pagedAttention(
  q: Float32Array,
  cache: PagedKv,
  spec: AttentionSpec,
  batch: AttentionBatch,
  out: Float32Array,
  h0 = 0,
  h1 = spec.numHeads,
  lse?: Float32Array,
): void {
  const { numHeads: Hq, numKvHeads: Hk, headDim: D, scale, slidingWindow } = spec;
  const group = Hq / Hk;
  const kvRow = Hk * D;
  const [g0, g1] = [Math.floor(h0 / group), Math.floor((h1 - 1) / group) + 1];
  let maxCtx = 0;
  for (let s = 0; s < batch.numSeqs; s++) maxCtx = Math.max(maxCtx, batch.contextLens[s]);
  const scores = new Float64Array(maxCtx);
  const slots = new Int32Array(maxCtx);
  const rowBase = new Int32Array(maxCtx);
  const max = new Float64Array(1);
  for (let s = 0; s < batch.numSeqs; s++) {
    const qStart = batch.cuSeqlensQ[s];
    const qLen = batch.cuSeqlensQ[s + 1] - qStart;
    const ctx = batch.contextLens[s];
    if (ctx === 0) continue;
    keySlots(batch, s * batch.maxBlocksPerSeq, ctx, slots);
    // Where each key's row starts in K and V (before adding the KV head offset), from the first key any row sees.
    const from = slidingWindow > 0 ? Math.max(0, ctx - qLen - slidingWindow + 1) : 0;
    const K = rowsOf(cache.k, slots, from, ctx - 1, kvRow, g0, g1, D, rowBase, scratchK);
    const V = rowsOf(cache.v, slots, from, ctx - 1, kvRow, g0, g1, D, rowBase, scratchV);
    for (let i = 0; i < qLen; i++) {
      const pos = ctx - qLen + i;
      const last = spec.causal === false ? ctx - 1 : pos;
      const first = slidingWindow > 0 ? Math.max(0, pos - slidingWindow + 1) : 0;
      for (let h = h0; h < h1; h++) {
        const qb = ((qStart + i) * Hq + h) * D;
        const kvOff = Math.floor(h / group) * D;
        const sum = softmaxScores(q, qb, K, rowBase, kvOff, first, last, D, scale, spec.softcap ?? 0, scores, max);
        if (lse) lse[(qStart + i) * Hq + h] = max[0] + Math.log(sum);
        weightedValues(V, rowBase, kvOff, first, last, D, scores, 1 / sum, out, qb);
      }
    }
  }
}

/**
 * scores[j] = exp(s_j - max), s_j = q·k_j · scale (soft-capped: cap · tanh(s_j / cap)), for keys first..last; returns
 * their sum (and the max in `maxOut[0]`).
 */
function softmaxScores(
  q: Float32Array,
  qb: number,
  K: Float32Array,
  rowBase: Int32Array,
  kvOff: number,
  first: number,
  last: number,
  D: number,
  scale: number,
  softcap: number,
  scores: Float64Array,
  maxOut: Float64Array,
): number {
  const D4 = D - (D % 4);
  let max = Number.NEGATIVE_INFINITY;
  for (let j = first; j <= last; j++) {
    const kb = rowBase[j] + kvOff;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let d = 0;
    for (; d < D4; d += 4) {
      a0 += q[qb + d] * K[kb + d];
      a1 += q[qb + d + 1] * K[kb + d + 1];
      a2 += q[qb + d + 2] * K[kb + d + 2];
      a3 += q[qb + d + 3] * K[kb + d + 3];
    }
    for (; d < D; d++) a0 += q[qb + d] * K[kb + d];
    const scaled = (a0 + a1 + a2 + a3) * scale;
    const score = softcap > 0 ? softcap * Math.tanh(scaled / softcap) : scaled;
    scores[j] = score;
    if (score > max) max = score;
  }
  let sum = 0;
  for (let j = first; j <= last; j++) {
    const p = Math.exp(scores[j] - max);
    scores[j] = p;
    sum += p;
  }
  maxOut[0] = max;
  return sum;
}

/** out[ob + d] = norm · Σ_j scores[j] · v_j[d], eight dims at a time so the sums stay in registers. */
function weightedValues(
  V: Float32Array,
  rowBase: Int32Array,
  kvOff: number,
  first: number,
  last: number,
  D: number,
  scores: Float64Array,
  norm: number,
  out: Float32Array,
  ob: number,
): void {
  let d = 0;
  for (; d + 8 <= D; d += 8) {
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let a4 = 0;
    let a5 = 0;
    let a6 = 0;
    let a7 = 0;
    const off = kvOff + d;
    for (let j = first; j <= last; j++) {
      const p = scores[j];
      const vb = rowBase[j] + off;
      a0 += p * V[vb];
      a1 += p * V[vb + 1];
      a2 += p * V[vb + 2];
      a3 += p * V[vb + 3];
      a4 += p * V[vb + 4];
      a5 += p * V[vb + 5];
      a6 += p * V[vb + 6];
      a7 += p * V[vb + 7];
    }
    out[ob + d] = a0 * norm;
    out[ob + d + 1] = a1 * norm;
    out[ob + d + 2] = a2 * norm;
    out[ob + d + 3] = a3 * norm;
    out[ob + d + 4] = a4 * norm;
    out[ob + d + 5] = a5 * norm;
    out[ob + d + 6] = a6 * norm;
    out[ob + d + 7] = a7 * norm;
  }
  for (; d < D; d++) {
    let a = 0;
    for (let j = first; j <= last; j++) a += scores[j] * V[rowBase[j] + kvOff + d];
    out[ob + d] = a * norm;
  }
}

/**
 * Attention with no cache: k and v `[T, Hk * D]` are this step's rows, so they are read as a paged cache of one-token
 * blocks whose table lists each sequence's own rows.
 */
export function selfAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  spec: AttentionSpec,
  cuSeqlens: Int32Array,
  out: Float32Array,
): void {
  const numSeqs = cuSeqlens.length - 1;
  let width = 1;
  for (let s = 0; s < numSeqs; s++) width = Math.max(width, cuSeqlens[s + 1] - cuSeqlens[s]);
  const blockTables = new Int32Array(numSeqs * width);
  const contextLens = new Int32Array(numSeqs);
  for (let s = 0; s < numSeqs; s++) {
    contextLens[s] = cuSeqlens[s + 1] - cuSeqlens[s];
    for (let j = 0; j < contextLens[s]; j++) blockTables[s * width + j] = cuSeqlens[s] + j;
  }
  const batch = { numSeqs, cuSeqlensQ: cuSeqlens, contextLens, blockTables, maxBlocksPerSeq: width, blockSize: 1 };
  const cache = { k: f32Plane(k), v: f32Plane(v), numKvHeads: spec.numKvHeads, headDim: spec.headDim };
  pagedAttention(q, cache, spec, batch, out);
}
