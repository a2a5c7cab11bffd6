import type { AttentionSpec, Backend, LayerKvCache, StepContext, Tensor } from '../backend/backend.ts';
import { type KvCompressionPlan, SNAPKV } from '../primitives/kv-compression.ts';

/**
 * Paged attention over a layer's cache, which the step's `kvCompression` plans then compact (SnapKV): attention
 * with its LSE, the key scores of the plans' windows, the kept entries chosen here, then gathered in the cache.
 * Later layers read their own caches, so compacting this one right after its attention changes nothing in the step.
 */
export function cachedAttention(
  b: Backend,
  q: Tensor,
  cache: LayerKvCache,
  spec: AttentionSpec,
  step: StepContext,
): Tensor {
  const plans = step.batch.kvCompression;
  if (!plans?.length) return b.attention(q, cache, spec, step);
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
      const candidates = scores.subarray(s + sinks, s + keys);
      // The picks-th largest score (a native sort: 32k keys × every layer and head), then one ascending pass.
      const threshold = picks > 0 ? Float32Array.from(candidates).sort()[candidates.length - picks]! : Infinity;
      let ties = picks - candidates.filter((v) => v > threshold).length;
      for (let j = 0; j < sinks; j++) keep[o++] = j;
      candidates.forEach((v, i) => {
        if (v > threshold || (v === threshold && ties-- > 0)) keep[o++] = sinks + i;
      });
      for (let j = keys; j < ctx; j++) keep[o++] = j;
    }
  }
  return keep;
}
