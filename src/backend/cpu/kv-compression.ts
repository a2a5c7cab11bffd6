import { SNAPKV } from '../../primitives/kv-compression.ts';
import type { StepBatch } from '../../primitives/step-batch.ts';
import type { AttentionSpec } from '../backend.ts';
import { type AttentionBatch, keySlots, type PagedKv } from './attention.ts';
import { moveHead, rowsOf } from './kv-store.ts';

type CompressionBatch = AttentionBatch & Pick<StepBatch, 'kvCompression'>;

/** Elements `kvKeyScores` returns for a step: per plan `[Hk, contextLen − window]`. */
export function keyScoreCount(batch: CompressionBatch, numKvHeads: number): number {
  let n = 0;
  for (const p of batch.kvCompression ?? []) n += numKvHeads * (batch.contextLens[p.seq]! - p.window);
  return n;
}

/**
 * SnapKV's key scores (see `Backend.kvKeyScores`): the attention each key before the window gets from the window's
 * query rows, summed over a GQA group's query heads in f64, then max-pooled over `SNAPKV.poolKernel` neighbours
 * (within the keys before the window). Masks match `pagedAttention`: causal, and a sliding window when the spec has one.
 */
export function snapKvScores(
  q: Float32Array,
  lse: Float32Array,
  cache: PagedKv,
  spec: AttentionSpec,
  batch: CompressionBatch,
  out: Float32Array,
): void {
  const { numHeads: Hq, numKvHeads: Hk, headDim: D, scale, slidingWindow } = spec;
  const group = Hq / Hk;
  const kvRow = Hk * D;
  const half = (SNAPKV.poolKernel - 1) / 2;
  const scratch = { values: new Float32Array(0) };
  let o = 0;
  for (const plan of batch.kvCompression ?? []) {
    const s = plan.seq;
    const ctx = batch.contextLens[s]!;
    const keys = ctx - plan.window;
    const qEnd = batch.cuSeqlensQ[s + 1]!;
    const raw = new Float64Array(keys);
    const slots = new Int32Array(ctx);
    const rowBase = new Int32Array(ctx);
    keySlots(batch, s * batch.maxBlocksPerSeq, ctx, slots);
    const K = rowsOf(cache.k, slots, 0, keys - 1, kvRow, 0, Hk, D, rowBase, scratch);
    for (let g = 0; g < Hk; g++) {
      raw.fill(0);
      for (let i = 0; i < plan.window; i++) {
        const row = qEnd - plan.window + i;
        const pos = keys + i;
        const first = slidingWindow > 0 ? Math.max(0, pos - slidingWindow + 1) : 0;
        for (let h = g * group; h < (g + 1) * group; h++) {
          const qb = (row * Hq + h) * D;
          const rowLse = lse[row * Hq + h]!;
          for (let j = first; j < keys; j++) {
            const kb = rowBase[j]! + g * D;
            let dot = 0;
            for (let d = 0; d < D; d++) dot += q[qb + d]! * K[kb + d]!;
            raw[j]! += Math.exp(dot * scale - rowLse);
          }
        }
      }
      for (let j = 0; j < keys; j++) {
        let m = raw[j]!;
        for (let n = Math.max(0, j - half); n <= Math.min(keys - 1, j + half); n++) m = Math.max(m, raw[n]!);
        out[o + j] = m;
      }
      o += keys;
    }
  }
}

/**
 * Compaction (see `Backend.compactKv`): per plan and KV head, entry keep[i] moves to entry i. `keep` ascends, so
 * keep[i] >= i and every entry is read before the lower index that overwrites it; a plain forward pass is safe.
 */
export function compactPagedKv(cache: PagedKv, keep: Int32Array, batch: CompressionBatch): void {
  const { numKvHeads: Hk, headDim: D } = cache;
  const row = Hk * D;
  let o = 0;
  for (const plan of batch.kvCompression ?? []) {
    const ctx = batch.contextLens[plan.seq]!;
    const slots = new Int32Array(ctx);
    keySlots(batch, plan.seq * batch.maxBlocksPerSeq, ctx, slots);
    for (let g = 0; g < Hk; g++) {
      for (let i = 0; i < plan.budget; i++) {
        const from = keep[o + i]!;
        if (from === i) continue;
        moveHead(cache.k, slots[from]!, slots[i]!, g, D, row);
        moveHead(cache.v, slots[from]!, slots[i]!, g, D, row);
      }
      o += plan.budget;
    }
  }
}
