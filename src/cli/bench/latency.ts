import type { Engine } from '../../engine/engine.ts';
import { Rng } from '../../engine/sequence.ts';

/** vLLM's `bench latency`: a batch of equal random prompts, all submitted at once, timed end to end. */
export interface LatencyWorkload {
  batchSize: number;
  inputLen: number;
  outputLen: number;
  warmupIters: number;
  iters: number;
  seed: number;
}

export const LATENCY_DEFAULTS: LatencyWorkload = {
  batchSize: 1,
  inputLen: 128,
  outputLen: 256,
  warmupIters: 1,
  iters: 3,
  seed: 0,
};

export interface LatencyResult {
  /** Seconds per iteration (the whole batch, prompt to last token), in run order. */
  latencies: number[];
  /** Mean time to first token over every request of every timed iteration, ms. */
  ttftMs: number;
  /** Mean time between a request's first and last token per later token, ms: the decode step as a user sees it. */
  msPerOutputToken: number;
}

/**
 * Runs `warmupIters` untimed then `iters` timed batches. Every iteration draws fresh prompts, so the prefix cache
 * never turns a prefill into a hit; EOS is ignored, so every request makes exactly `outputLen` tokens.
 */
export async function runLatency(engine: Engine, vocabSize: number, w: LatencyWorkload): Promise<LatencyResult> {
  const rng = new Rng(w.seed, 0);
  const maxId = Math.min(vocabSize, 10_000);
  const latencies: number[] = [];
  let ttft = 0;
  let decode = 0;
  let requests = 0;
  for (let it = 0; it < w.warmupIters + w.iters; it++) {
    const start = performance.now();
    const timings = await Promise.all(
      Array.from({ length: w.batchSize }, async (_, i) => {
        const prompt = Array.from({ length: w.inputLen }, () => Math.floor(rng.next() * maxId));
        const params = { temperature: 1, maxTokens: w.outputLen, ignoreEos: true, seed: w.seed + i };
        let first = 0;
        let tokens = 0;
        for await (const out of engine.generate({ prompt, params })) {
          tokens += out.outputs.reduce((a, d) => a + d.tokenIds.length, 0);
          if (tokens > 0 && first === 0) first = performance.now();
        }
        return { first, last: performance.now(), tokens };
      }),
    );
    if (it < w.warmupIters) continue;
    latencies.push((performance.now() - start) / 1000);
    for (const t of timings) {
      ttft += t.first - start;
      if (t.tokens > 1) decode += (t.last - t.first) / (t.tokens - 1);
      requests++;
    }
  }
  return {
    latencies,
    ttftMs: ttft / requests,
    msPerOutputToken: w.outputLen > 1 ? decode / requests : 0,
  };
}

/** The q-th quantile (0..1) of `xs`, linearly interpolated as numpy does. */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (at - lo);
}
