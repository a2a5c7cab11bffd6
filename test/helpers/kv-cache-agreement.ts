import type { Model } from '../../src/models/model.ts';
import type { KvQuant } from '../../src/primitives/kv-cache-type.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { relL2 } from './gpu.ts';
import { argmax, PagedSession } from './paged-session.ts';

/** `count` stories of `length` tokens the model writes itself from `bos` at temperature 1 (f32 cache), one per seed. */
export function ownStories(model: Model, bos: number, count: number, length: number): number[][] {
  const vocab = model.config.vocabSize;
  const blocks = count * Math.ceil(length / 16);
  const session = new PagedSession(model, 16, blocks);
  const rngs = Array.from({ length: count }, (_, s) => mulberry32(1000 + s));
  const stories = rngs.map(() => [bos]);
  let next = stories.map((s, i) => ({ seq: i, tokens: s }));
  while (stories[0]!.length < length) {
    const rows = session.step(next);
    next = rows.map((logits, i) => {
      let max = Number.NEGATIVE_INFINITY;
      for (const v of logits) max = Math.max(max, v);
      let sum = 0;
      for (const v of logits) sum += Math.exp(v - max);
      let u = rngs[i]!() * sum;
      let t = 0;
      while (t < vocab - 1 && (u -= Math.exp(logits[t]! - max)) > 0) t++;
      stories[i]!.push(t);
      return { seq: i, tokens: [t] };
    });
  }
  return stories;
}

export interface KvAgreement {
  /** Teacher-forced steps compared. */
  steps: number;
  /** Share of steps whose argmax equals the f32 cache's. */
  top1: number;
  /** The logits' relative L2 distance from the f32 cache's, over every step. */
  relL2: number;
}

/**
 * Each sequence teacher-forced (one prefill, logits at every position) with the cache stored as `quant` and as f32;
 * every position's logits read the quantized keys and values of all positions before it.
 */
export function kvCacheAgreement(model: Model, sequences: number[][], quant: KvQuant): KvAgreement {
  const blocks = Math.ceil(Math.max(...sequences.map((s) => s.length)) / 16);
  let [steps, same] = [0, 0];
  const ours: number[] = [];
  const reference: number[] = [];
  for (const seq of sequences) {
    const run = (q?: KvQuant) =>
      new PagedSession(model, 16, blocks, q).step([{ seq: 0, tokens: seq.slice(0, -1), logits: 'all' }]);
    const want = run();
    run(quant).forEach((row, i) => {
      steps++;
      if (argmax(row) === argmax(want[i]!)) same++;
      ours.push(...row);
      reference.push(...want[i]!);
    });
  }
  return { steps, top1: same / steps, relL2: relL2(ours, reference) };
}
