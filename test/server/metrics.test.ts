import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveServeConfig } from '../../src/server/config.ts';
import { EngineModelSource } from '../../src/server/engine-source.ts';
import { oneTwoFiveBuckets } from '../../src/server/request-histograms.ts';
import { histogram, parsePrometheus, total } from '../../src/server/ui/static/prometheus.js';
import { projectRoot } from '../helpers/fixtures.ts';
import { post, request, startTestServer, type TestServer } from './harness.ts';

const fixtures = join(projectRoot, 'test', 'fixtures', 'models');
const LLAMA = 'tiny-llama';
const BERT = 'tiny-bert';
const RERANKER = 'tiny-bert-reranker';

let server: TestServer;
before(async () => {
  const config = { ...resolveServeConfig({}, {}), port: 0 };
  const source = new EngineModelSource(config, { device: 'cpu', log: () => {} });
  const entry = (name: string) => ({ name, path: join(fixtures, name), ref: join(fixtures, name) });
  server = await startTestServer(source, [entry(LLAMA), entry(BERT), entry(RERANKER)], config);
});
after(() => server.close());

type Samples = ReturnType<typeof parsePrometheus>;

async function scrape(): Promise<Samples> {
  return parsePrometheus((await request(`${server.url}/metrics`)).text);
}

/** How much a metric's series matching `labels` grew between two scrapes. */
const grew = (before: Samples, after: Samples, name: string, labels: Record<string, string>) =>
  total(after, name, labels) - total(before, name, labels);

/**
 * The text is valid Prometheus exposition: every line a comment or a sample, each family's HELP and TYPE once, and
 * each histogram series' buckets cumulative up to +Inf, which equals its count.
 */
function assertValidExposition(text: string) {
  // prom-client writes NaN as "Nan" (the event-loop lag before its first sample), which Prometheus reads: Go's
  // ParseFloat ignores case.
  const lines = text.split('\n').filter((l) => l !== '' && !/ Nan$/.test(l));
  const comments = lines.filter((l) => l.startsWith('#'));
  assert.equal(parsePrometheus(lines.join('\n')).length, lines.length - comments.length, 'every sample line parses');
  assert.equal(new Set(comments).size, comments.length, 'HELP and TYPE once per family');
  const series = new Map<string, number[]>();
  for (const s of parsePrometheus(text)) {
    if (!s.name.endsWith('_bucket')) continue;
    const { le, ...rest } = s.labels as Record<string, string>;
    const key = `${s.name}${JSON.stringify(rest)}`;
    series.set(key, [...(series.get(key) ?? []), s.value]);
    if (le === '+Inf') {
      const count = total(parsePrometheus(text), s.name.replace(/_bucket$/, '_count'), rest);
      assert.equal(s.value, count, `${key}: +Inf bucket is the count`);
    }
  }
  for (const [key, counts] of series) {
    assert.ok(
      counts.every((c, i) => i === 0 || c >= counts[i - 1]!),
      `${key}: cumulative buckets`,
    );
  }
}

const generate = (options: Record<string, number>) =>
  post(`${server.url}/api/generate`, { model: LLAMA, prompt: 'Once upon a time', stream: false, options });

test("request_success_total counts each finished sequence under vLLM's finished_reason label", async () => {
  const before = await scrape();
  // Greedy: a sampled answer could end at EOS within its three tokens (a 'stop').
  assert.equal((await generate({ num_predict: 3, temperature: 0 })).status, 200);
  const after = await scrape();
  const name = 'pagoda_request_success_total';
  assert.equal(grew(before, after, name, { model_name: LLAMA, finished_reason: 'length' }), 1);
  assert.equal(grew(before, after, name, { model_name: LLAMA }), 1);
  assert.ok(after.filter((s) => s.name === name).every((s) => !('finish_reason' in s.labels)));
});

/** A histogram's count and sum, and the bucket bound each new observation landed in, between two scrapes. */
function histogramGrowth(before: Samples, after: Samples, name: string, labels: Record<string, string>) {
  const [b, a] = [histogram(before, name, labels), histogram(after, name, labels)];
  const landed = a.buckets.filter((x, i) => x.count > (b.buckets[i]?.count ?? 0)).map((x) => x.le);
  return { count: a.count - b.count, sum: a.sum - b.sum, landed };
}

test("token histograms use vLLM's 1-2-5 buckets", () => {
  assert.deepEqual(oneTwoFiveBuckets(100), [1, 2, 5, 10, 20, 50, 100]);
  assert.deepEqual(oneTwoFiveBuckets(1_000_000).slice(-3), [200_000, 500_000, 1_000_000]);
});

test("vLLM's per-request histograms: phases from the engine's timestamps, prompt and generated tokens", async () => {
  const before = await scrape();
  const r = await generate({ num_predict: 7, temperature: 0 });
  const { prompt_eval_count: prompt, eval_count: generated } = r.json as Record<string, number>;
  assert.equal(generated, 7);
  const after = await scrape();
  const labels = { model_name: LLAMA };
  const growth = (name: string) => histogramGrowth(before, after, name, labels);
  const promptTokens = growth('pagoda_request_prompt_tokens');
  const bucket = oneTwoFiveBuckets(1_000_000).find((le) => le >= prompt!);
  assert.deepEqual(promptTokens, { count: 1, sum: prompt, landed: [bucket] });
  assert.deepEqual(growth('pagoda_request_generation_tokens'), { count: 1, sum: 7, landed: [10] });
  const phases = ['queue', 'prefill', 'decode'].map((p) => growth(`pagoda_request_${p}_time_seconds`));
  for (const p of phases) assert.equal(p.count, 1);
  for (const p of phases) assert.ok(p.sum >= 0);
  // The phases are parts of the request's end-to-end time (engine timestamps are whole milliseconds).
  const e2e = growth('pagoda_e2e_request_latency_seconds');
  assert.equal(e2e.count, 1);
  assert.ok(phases.reduce((s, p) => s + p.sum, 0) <= e2e.sum + 0.003, `${JSON.stringify(phases)} vs ${e2e.sum}`);
  assertValidExposition((await request(`${server.url}/metrics`)).text);
});

test('iteration_tokens_total: one observation per engine step, of the tokens it computed', async () => {
  const before = await scrape();
  // Raw and unlike the other prompts, so no block of it is in the prefix cache: the prefill computes it whole.
  const r = await post(`${server.url}/api/generate`, {
    model: LLAMA,
    prompt: 'Zebras queue for iteration counts',
    raw: true,
    stream: false,
    options: { num_predict: 4, temperature: 0 },
  });
  const { prompt_eval_count: prompt, eval_count: generated } = r.json as Record<string, number>;
  assert.equal(generated, 4);
  const after = await scrape();
  const labels = { model_name: LLAMA };
  const steps = grew(before, after, 'pagoda_engine_steps_total', labels);
  // The prompt in one step (its first token drawn there), then one token per step.
  assert.equal(steps, 4);
  const bucket = [1, 8, 16, 32, 64].find((le) => le >= prompt!);
  assert.deepEqual(histogramGrowth(before, after, 'pagoda_iteration_tokens_total', labels), {
    count: steps,
    sum: prompt! + 3,
    landed: [1, bucket],
  });
});

test('pooling requests: each input a finished request (stop) with its end-to-end, queue and prefill times and prompt tokens', async () => {
  const before = await scrape();
  const r = await post(`${server.url}/v1/embeddings`, { model: BERT, input: ['first text', 'a second, longer text'] });
  assert.equal(r.status, 200);
  const tokens = (r.json.usage as { prompt_tokens: number }).prompt_tokens;
  const reranked = await post(`${server.url}/v1/rerank`, {
    model: RERANKER,
    query: 'paged attention',
    documents: ['blocks of the KV cache', 'a fox', 'the lazy dog'],
  });
  assert.equal(reranked.status, 200);
  const after = await scrape();
  const success = 'pagoda_request_success_total';
  assert.equal(grew(before, after, success, { model_name: BERT, finished_reason: 'stop' }), 2);
  assert.equal(grew(before, after, success, { model_name: RERANKER, finished_reason: 'stop' }), 3);
  assert.equal(grew(before, after, success, {}), 5, 'no other reason');
  const bert = { model_name: BERT };
  const e2e = histogramGrowth(before, after, 'pagoda_e2e_request_latency_seconds', bert);
  assert.equal(e2e.count, 2);
  assert.ok(e2e.sum > 0);
  assert.equal(histogramGrowth(before, after, 'pagoda_e2e_request_latency_seconds', { model_name: RERANKER }).count, 3);
  assert.equal(grew(before, after, 'pagoda_prompt_tokens_total', bert), tokens);
  const prompts = histogramGrowth(before, after, 'pagoda_request_prompt_tokens', bert);
  assert.deepEqual([prompts.count, prompts.sum], [2, tokens]);
  // The pooling engine's steps are counted by size too: here the two inputs in one step.
  const steps = histogramGrowth(before, after, 'pagoda_iteration_tokens_total', bert);
  assert.deepEqual([steps.count, steps.sum], [grew(before, after, 'pagoda_engine_steps_total', bert), tokens]);
  assert.ok(steps.count >= 1);
  // Each input's wait for its step and the step's time (its prefill), within its end-to-end time; no decode phase.
  const queue = histogramGrowth(before, after, 'pagoda_request_queue_time_seconds', bert);
  const prefill = histogramGrowth(before, after, 'pagoda_request_prefill_time_seconds', bert);
  assert.deepEqual([queue.count, prefill.count], [2, 2]);
  assert.ok(prefill.sum > 0 && queue.sum >= 0 && queue.sum + prefill.sum <= e2e.sum, `${queue.sum} ${prefill.sum}`);
  assert.equal(histogramGrowth(before, after, 'pagoda_request_decode_time_seconds', bert).count, 0);
  // Nothing generated: the generation histograms stay empty for a pooling model.
  assert.equal(histogramGrowth(before, after, 'pagoda_request_generation_tokens', bert).count, 0);
  assertValidExposition((await request(`${server.url}/metrics`)).text);
});

test('a refused pooling request counts nothing', async () => {
  const before = await scrape();
  // Token ids beyond the vocabulary: refused before it is pooled.
  const r = await post(`${server.url}/v1/embeddings`, { model: BERT, input: [[1, 2, 99_999]] });
  assert.equal(r.status, 400);
  const after = await scrape();
  for (const name of [
    'pagoda_prompt_tokens_total',
    'pagoda_request_success_total',
    'pagoda_e2e_request_latency_seconds_count',
  ]) {
    assert.equal(grew(before, after, name, { model_name: BERT }), 0, name);
  }
});
