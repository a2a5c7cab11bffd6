import type { Metric, Registry } from 'prom-client';

/** vLLM's buckets for iteration_tokens_total. */
const STEP_TOKEN_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];

/** One engine's steps by the tokens each computed (EngineStats.stepTokens). */
export interface EngineSteps {
  name: string;
  stepTokens: ReadonlyMap<number, number>;
}

/**
 * vLLM's `iteration_tokens_total` (tokens per engine step) as `pagoda_iteration_tokens_total`, per model. The engines
 * count their steps by size themselves and the histogram is bucketed from those counts at scrape time, as the other
 * engine counters are read: prom-client's Histogram only counts what is observed through it, and a step loop does not
 * call into the server.
 */
export function registerStepHistogram(registry: Registry, engines: () => EngineSteps[]): void {
  const name = 'pagoda_iteration_tokens_total';
  const help = 'Tokens computed per engine step.';
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const values = [];
      for (const e of engines()) {
        const labels = { model_name: e.name };
        const cumulative = STEP_TOKEN_BUCKETS.map(() => 0);
        let [count, sum] = [0, 0];
        for (const [tokens, steps] of e.stepTokens) {
          count += steps;
          sum += tokens * steps;
          STEP_TOKEN_BUCKETS.forEach((le, i) => {
            if (tokens <= le) cumulative[i] += steps;
          });
        }
        const bucket = (le: number | string, value: number) => ({
          metricName: `${name}_bucket`,
          labels: { ...labels, le },
          value,
        });
        values.push(...STEP_TOKEN_BUCKETS.map((le, i) => bucket(le, cumulative[i]!)), bucket('+Inf', count));
        values.push(
          { metricName: `${name}_sum`, labels, value: sum },
          { metricName: `${name}_count`, labels, value: count },
        );
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
    reset() {},
  };
  // The registry asks a metric only for these; prom-client's types name its own classes alone.
  registry.registerMetric(metric as unknown as Metric);
}
