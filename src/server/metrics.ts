import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineStats } from '../engine/types.ts';
import { type PooledInput, RequestHistograms } from './request-histograms.ts';
import { registerStepHistogram } from './step-histogram.ts';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * Prometheus metrics (vLLM's names under `pagoda_`), with prom-client's process and Node.js metrics (CPU, memory,
 * event-loop lag, GC) under their usual names. Engine state is read at scrape time from each resident model's
 * `stats()`; latencies and token counts are observed by the routes as requests run.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly ttft: Histogram<'model_name'>;
  readonly interToken: Histogram<'model_name'>;
  readonly e2e: Histogram<'model_name'>;
  readonly requests: RequestHistograms;
  readonly promptTokens: Counter<'model_name'>;
  readonly generationTokens: Counter<'model_name'>;
  readonly finished: Counter<'model_name' | 'finished_reason'>;
  readonly httpResponses: Counter<'status'>;

  constructor(engines: () => { name: string; stats: EngineStats }[]) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const labelNames = ['model_name'] as const;
    const fromEngines = (gauge: Gauge<'model_name'>, value: (s: EngineStats) => number) => {
      gauge.reset();
      for (const e of engines()) gauge.set({ model_name: e.name }, value(e.stats));
    };
    const engineGauge = (name: string, help: string, value: (s: EngineStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          fromEngines(this, value);
        },
      });
    engineGauge('pagoda_num_requests_running', 'Sequences running in the engine.', (s) => s.running);
    engineGauge('pagoda_num_requests_waiting', 'Sequences waiting for the engine.', (s) => s.waiting);
    engineGauge('pagoda_kv_cache_usage_perc', 'Fraction of KV-cache blocks in use (0..1).', (s) =>
      s.totalBlocks ? (s.totalBlocks - s.freeBlocks) / s.totalBlocks : 0,
    );
    engineGauge('pagoda_kv_cache_blocks_total', 'KV-cache blocks.', (s) => s.totalBlocks);
    engineGauge('pagoda_prefix_cache_hit_rate', 'Prompt tokens found in the prefix cache / looked up.', (s) =>
      s.prefixCacheQueries ? s.prefixCacheHits / s.prefixCacheQueries : 0,
    );
    // Cumulative engine counts as counters (vLLM's names): reset and re-counted from the engines at every scrape.
    const engineCounter = (name: string, help: string, value: (s: EngineStats) => number) =>
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const e of engines()) this.inc({ model_name: e.name }, value(e.stats));
        },
      });
    const counters: [name: string, help: string, value: (s: EngineStats) => number][] = [
      ['pagoda_prefix_cache_hits_total', 'Prompt tokens found in the prefix cache.', (s) => s.prefixCacheHits],
      [
        'pagoda_prefix_cache_queries_total',
        'Prompt tokens looked up in the prefix cache.',
        (s) => s.prefixCacheQueries,
      ],
      ['pagoda_num_preemptions_total', 'Sequences preempted.', (s) => s.preemptions],
      ['pagoda_engine_steps_total', 'Engine steps run.', (s) => s.steps],
      [
        'pagoda_kv_compression_blocks_saved_total',
        'KV-cache blocks freed by KV compression of long prompts.',
        (s) => s.kvBlocksSaved,
      ],
      [
        'pagoda_spec_decode_num_draft_tokens_total',
        'Speculative decoding: draft tokens proposed and verified.',
        (s) => s.specDraftTokens,
      ],
      [
        'pagoda_spec_decode_num_accepted_tokens_total',
        'Speculative decoding: draft tokens the target model accepted.',
        (s) => s.specAcceptedTokens,
      ],
    ];
    for (const [name, help, value] of counters) engineCounter(name, help, value);

    this.promptTokens = new Counter({
      name: 'pagoda_prompt_tokens_total',
      help: 'Prompt tokens submitted.',
      labelNames,
      registers,
    });
    this.generationTokens = new Counter({
      name: 'pagoda_generation_tokens_total',
      help: 'Tokens generated.',
      labelNames,
      registers,
    });
    this.finished = new Counter({
      name: 'pagoda_request_success_total',
      help: 'Sequences finished, by finish reason (stop, length, abort).',
      // vLLM's label name, which dashboards built for vLLM select on.
      labelNames: ['model_name', 'finished_reason'],
      registers,
    });
    this.httpResponses = new Counter({
      name: 'pagoda_http_responses_total',
      help: 'HTTP responses by status.',
      labelNames: ['status'],
      registers,
    });
    const histogram = (name: string, help: string) =>
      new Histogram({ name, help, labelNames, buckets: LATENCY_BUCKETS, registers });
    this.ttft = histogram('pagoda_time_to_first_token_seconds', 'Time from arrival to the first generated token.');
    this.interToken = histogram('pagoda_inter_token_latency_seconds', 'Time between successive generated tokens.');
    this.e2e = histogram('pagoda_e2e_request_latency_seconds', 'Time from arrival to the last token.');
    this.requests = new RequestHistograms(this.registry, LATENCY_BUCKETS);
    registerStepHistogram(this.registry, () =>
      engines().map((e) => ({ name: e.name, stepTokens: e.stats.stepTokens })),
    );
  }

  /**
   * A pooling request's inputs, pooled `seconds` after it arrived: each one a request that stops once pooled, as vLLM
   * counts them.
   */
  pooled(model: string, inputs: readonly PooledInput[], seconds: number): void {
    const labels = { model_name: model };
    this.finished.inc({ ...labels, finished_reason: 'stop' }, inputs.length);
    for (const input of inputs) {
      this.e2e.observe(labels, seconds);
      this.requests.pooled(labels, input);
    }
  }
}
