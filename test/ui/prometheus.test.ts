import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineStats } from '../../src/engine/types.ts';
import { ServerMetrics } from '../../src/server/metrics.ts';
import {
  byLabel,
  histogram,
  labelValues,
  parsePrometheus,
  quantile,
  total,
} from '../../src/server/ui/static/prometheus.js';

const idle: EngineStats = {
  running: 0,
  waiting: 0,
  totalBlocks: 0,
  freeBlocks: 0,
  blockSize: 16,
  preemptions: 0,
  promptTokens: 0,
  promptTokensComputed: 0,
  generationTokens: 0,
  prefixCacheHits: 0,
  prefixCacheQueries: 0,
  steps: 0,
  stepTokens: new Map(),
  kvBlocksSaved: 0,
  specDraftTokens: 0,
  specAcceptedTokens: 0,
};

/** The server's own /metrics text, with some traffic on two models. */
async function serverText(): Promise<string> {
  const metrics = new ServerMetrics(() => [
    {
      name: 'a',
      stats: {
        ...idle,
        running: 2,
        waiting: 1,
        totalBlocks: 100,
        freeBlocks: 75,
        specDraftTokens: 9,
        specAcceptedTokens: 6,
      },
    },
    { name: 'b', stats: { ...idle, running: 1, totalBlocks: 10, freeBlocks: 10, preemptions: 3 } },
  ]);
  metrics.generationTokens.inc({ model_name: 'a' }, 40);
  metrics.generationTokens.inc({ model_name: 'b' }, 2);
  for (const s of [0.003, 0.004, 0.02, 0.2, 3]) metrics.interToken.observe({ model_name: 'a' }, s);
  metrics.interToken.observe({ model_name: 'b' }, 0.004);
  return metrics.registry.metrics();
}

test("reads the server's /metrics: gauges and counters per model and summed", async () => {
  const samples = parsePrometheus(await serverText());
  assert.deepEqual(labelValues(samples, 'model_name'), ['a', 'b']);
  assert.equal(total(samples, 'pagoda_num_requests_running'), 3);
  assert.equal(total(samples, 'pagoda_num_requests_running', { model_name: 'b' }), 1);
  assert.equal(total(samples, 'pagoda_generation_tokens_total'), 42);
  assert.deepEqual(
    [...byLabel(samples, 'pagoda_kv_cache_usage_perc', 'model_name')],
    [
      ['a', 0.25],
      ['b', 0],
    ],
  );
  assert.equal(total(samples, 'pagoda_num_preemptions_total'), 3);
  assert.equal(total(samples, 'pagoda_spec_decode_num_draft_tokens_total', { model_name: 'a' }), 9);
  assert.equal(total(samples, 'pagoda_spec_decode_num_accepted_tokens_total'), 6);
});

test('histograms: per-bucket counts from the cumulative ones, and interpolated quantiles', async () => {
  const samples = parsePrometheus(await serverText());
  const a = histogram(samples, 'pagoda_inter_token_latency_seconds', { model_name: 'a' });
  assert.equal(a.count, 5);
  assert.ok(Math.abs(a.sum - 3.227) < 1e-9);
  const nonEmpty = a.buckets.filter((b) => b.count > 0).map((b) => [b.le, b.count]);
  assert.deepEqual(nonEmpty, [
    [0.005, 2],
    [0.025, 1],
    [0.25, 1],
    [5, 1],
  ]);
  assert.equal(a.buckets.at(-1)!.le, Number.POSITIVE_INFINITY);
  const all = histogram(samples, 'pagoda_inter_token_latency_seconds');
  assert.equal(all.count, 6);
  assert.equal(all.buckets[0]!.count, 3);
  // Median of 6: rank 3 falls at the top of the first bucket (0..5 ms, 3 observations).
  assert.equal(quantile(all, 0.5), 0.005);
  // 90th percentile: rank 5.4 is 40 % into the (2.5, 5] bucket.
  assert.ok(Math.abs(quantile(all, 0.9)! - 3.5) < 1e-9);
  assert.equal(quantile(histogram(samples, 'no_such_metric'), 0.5), null);
});

test('label values with escapes, special values, comments and junk lines', () => {
  const samples = parsePrometheus(
    [
      '# HELP x A help line',
      '# TYPE x gauge',
      'x{model_name="we\\"ird\\\\name\\n"} +Inf',
      'y NaN',
      'z{le="-Inf"} -Inf',
      'not a sample line',
      '',
    ].join('\n'),
  );
  assert.deepEqual(samples[0], {
    name: 'x',
    labels: { model_name: 'we"ird\\name\n' },
    value: Number.POSITIVE_INFINITY,
  });
  assert.ok(Number.isNaN(samples[1]!.value));
  assert.equal(samples[2]!.value, Number.NEGATIVE_INFINITY);
  assert.equal(samples.length, 3);
});
