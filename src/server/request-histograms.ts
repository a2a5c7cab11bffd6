import { Histogram, type Registry } from 'prom-client';
import type { RequestMetrics } from '../engine/types.ts';

/** vLLM's 1-2-5 buckets (1, 2, 5, 10, 20, 50, …) up to `max`. */
export function oneTwoFiveBuckets(max: number): number[] {
  const out: number[] = [];
  for (let scale = 1; ; scale *= 10) {
    for (const m of [1, 2, 5]) {
      if (m * scale > max) return out;
      out.push(m * scale);
    }
  }
}

// vLLM sizes these by the model's context length; one registry serves many models, so the top covers 1M-token ones.
const TOKEN_BUCKETS = oneTwoFiveBuckets(1_000_000);

type Labels = { model_name: string };

/** One pooled input as the metrics count it: its tokens, its wait for a step and the step's time (null: untimed). */
export interface PooledInput {
  tokens: number;
  queueSeconds: number | null;
  computeSeconds: number | null;
}

/**
 * vLLM's per-request histograms, observed once per finished request from the engine's timestamps: time waiting to be
 * scheduled, scheduled to first token (prefill), first token to finish (decode), and its prompt and generated tokens.
 * A phase the request never reached (aborted while waiting) is not observed.
 */
export class RequestHistograms {
  private readonly queue: Histogram<'model_name'>;
  private readonly prefill: Histogram<'model_name'>;
  private readonly decode: Histogram<'model_name'>;
  private readonly promptTokens: Histogram<'model_name'>;
  private readonly generationTokens: Histogram<'model_name'>;

  /** `latencyBuckets`: the end-to-end latency's, so that the phases read against it (vLLM shares its buckets too). */
  constructor(registry: Registry, latencyBuckets: number[]) {
    const histogram = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name, help, labelNames: ['model_name'], buckets, registers: [registry] });
    this.queue = histogram(
      'pagoda_request_queue_time_seconds',
      'Time a request waited before it was first scheduled.',
      latencyBuckets,
    );
    this.prefill = histogram(
      'pagoda_request_prefill_time_seconds',
      'Time from first scheduled to the first token.',
      latencyBuckets,
    );
    this.decode = histogram(
      'pagoda_request_decode_time_seconds',
      'Time from the first token to the finish.',
      latencyBuckets,
    );
    this.promptTokens = histogram('pagoda_request_prompt_tokens', 'Prompt tokens per request.', TOKEN_BUCKETS);
    this.generationTokens = histogram(
      'pagoda_request_generation_tokens',
      'Tokens generated per request.',
      TOKEN_BUCKETS,
    );
  }

  /** A request the engine finished (its timestamps are Date.now() milliseconds). */
  finished(labels: Labels, m: RequestMetrics): void {
    const phase = (h: Histogram<'model_name'>, from: number | null, to: number | null) => {
      if (from !== null && to !== null) h.observe(labels, (to - from) / 1000);
    };
    phase(this.queue, m.arrivalTime, m.firstScheduledTime);
    phase(this.prefill, m.firstScheduledTime, m.firstTokenTime);
    phase(this.decode, m.firstTokenTime, m.finishedTime);
    this.promptTokens.observe(labels, m.promptTokens);
    this.generationTokens.observe(labels, m.generationTokens);
  }

  /**
   * A pooling input: its wait for a step and the step's time (its prefill: the row is its whole answer) and its
   * prompt; it generates nothing, so it has no decode phase.
   */
  pooled(labels: Labels, input: PooledInput): void {
    if (input.queueSeconds !== null) this.queue.observe(labels, input.queueSeconds);
    if (input.computeSeconds !== null) this.prefill.observe(labels, input.computeSeconds);
    this.promptTokens.observe(labels, input.tokens);
  }
}
