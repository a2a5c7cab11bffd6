import type { AttentionSpec, Backend, LayerKvCache, StepContext, Tensor } from '../backend/backend.ts';
import { type KvCompressionPlan, SNAPKV } from '../primitives/kv-compression.ts';

/**
 * Paged attention over a layer's cache, which the step's `kvCompression` plans then compact (SnapKV): attention
 * with its LSE, the key scores of the plans' windows, the kept entries chosen here, then gathered in the cache.
 * Later layers read their own caches, so compacting this one right after its attention changes nothing in the step.
 * `feeds`: the o projection's weight (Backend.attention's hint).
 */
export function cachedAttention(
  b: Backend,
  q: Tensor,
  cache: LayerKvCache,
  spec: AttentionSpec,
  step: StepContext,
  feeds?: Tensor,
): Tensor {
  const plans = step.batch.kvCompression;
  if (!plans?.length) return b.attention(q, cache, spec, step, feeds);
  const { out, lse } = b.attentionWithLse(q, cache, spec, step);
  const scores = b.toHost(b.kvKeyScores(q, lse, cache, spec, step));
  b.compactKv(cache, selectKeys(scores, plans, step.batch.contextLens, spec.numKvHeads), step);
  return out;
}

/**
 * The entries each plan's KV heads keep, ascending, `[Hk, budget]` per plan: the sinks, the `budget − sinks − window`
 * best-scored keys between them and the window (ties to the earlier key), and the window. `scores` is
 * `kvKeyScores`' output (per plan `[Hk, contextLen − window]`).
 */
export function selectKeys(
  scores: Float32Array,
  plans: readonly KvCompressionPlan[],
  contextLens: Int32Array,
  numKvHeads: number,
): Int32Array {
  const keep = new Int32Array(plans.reduce((n, p) => n + numKvHeads * p.budget, 0));
  let o = 0;
  let s = 0;
  for (const { seq, window, budget } of plans) {
    const ctx = contextLens[seq]!;
    const keys = ctx - window;
    const sinks = Math.min(SNAPKV.sinks, keys);
    const picks = budget - sinks - window;
    if (picks < 0 || ctx <= budget) throw new Error(`kv compression: ${ctx} keys cannot be cut to ${budget}`);
    for (let g = 0; g < numKvHeads; g++, s += keys) {
      const from = s + sinks;
      const to = s + keys;
      const threshold = picks > 0 ? kthLargest(scores.slice(from, to), picks) : Infinity;
      let ties = picks;
      for (let i = from; i < to; i++) if (scores[i]! > threshold) ties--;
      for (let j = 0; j < sinks; j++) keep[o++] = j;
      for (let i = from; i < to; i++) {
        const v = scores[i]!;
        if (v > threshold || (v === threshold && ties-- > 0)) keep[o++] = i - s;
      }
      for (let j = keys; j < ctx; j++) keep[o++] = j;
    }
  }
  return keep;
}

/**
 * The k-th largest value of `a` (reordered in place): Hoare quickselect with a median-of-three pivot, linear on
 * average where a sort of 32k keys × every layer and KV head took about a second per 32k-token prompt.
 */
export function kthLargest(a: Float32Array, k: number): number {
  // The k-th largest is the (n − k)-th smallest.
  const target = a.length - k;
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const pivot = median(a[lo]!, a[mid]!, a[hi]!);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target]!;
  }
  return a[target]!;
}

function median(x: number, y: number, z: number): number {
  return Math.max(Math.min(x, y), Math.min(Math.max(x, y), z));
}
