import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  buildPrompts,
  gammaInterval,
  runServeBench,
  type ServeWorkload,
  serveRows,
} from '../../src/cli/bench/serve.ts';
import { Rng } from '../../src/engine/sequence.ts';
import { pagodaAsync } from '../helpers/cli.ts';
import { MODEL, type ServedModel, startServed } from '../server/served.ts';

let served: ServedModel;
before(async () => {
  served = await startServed();
});
after(() => served.close());

const workload = (over: Partial<ServeWorkload> = {}): ServeWorkload => ({
  baseUrl: served.url,
  model: MODEL,
  endpoint: '/v1/completions',
  numPrompts: 6,
  inputLen: 20,
  outputLen: 5,
  rangeRatio: 0,
  requestRate: Number.POSITIVE_INFINITY,
  burstiness: 1,
  maxConcurrency: Number.POSITIVE_INFINITY,
  ignoreEos: true,
  seed: 0,
  ...over,
});

test('every request is answered and counted: the prompt and output tokens the server reports, timings in order', async () => {
  const w = workload({ maxConcurrency: 2 });
  const prompts = await buildPrompts(w);
  assert.ok(prompts.every((p) => Array.isArray(p.prompt) && p.prompt.length === 20 && p.outputLen === 5));
  const r = await runServeBench(w, prompts);
  assert.equal(r.requests.length, 6);
  for (const q of r.requests) {
    assert.ok(q.ok, q.error);
    assert.equal(q.promptTokens, 20);
    assert.equal(q.outputTokens, 5);
    assert.ok(q.ttftMs > 0 && q.ttftMs <= q.e2eMs);
    assert.ok(q.itlMs.every((g) => g >= 0));
  }
  const rows = new Map(serveRows(r));
  assert.equal(rows.get('successful requests'), '6');
  assert.equal(rows.get('failed requests'), '0');
  assert.equal(rows.get('input tokens'), '120');
  assert.equal(rows.get('generated tokens'), '30');
});

test('chat prompts go as text; lengths vary within the range ratio; a refused request is counted as failed', async () => {
  const w = workload({ endpoint: '/v1/chat/completions', rangeRatio: 0.5, numPrompts: 8 });
  const prompts = await buildPrompts(w);
  assert.ok(prompts.every((p) => typeof p.prompt === 'string' && p.outputLen >= 2 && p.outputLen <= 8));
  const r = await runServeBench(w, prompts);
  assert.ok(r.requests.every((q) => q.ok && q.outputTokens === prompts[r.requests.indexOf(q)]!.outputLen));
  const bad = await runServeBench(workload({ numPrompts: 1 }), [{ prompt: [1, 2], outputLen: 100_000 }]);
  assert.equal(bad.requests[0]!.ok, false);
  assert.match(bad.requests[0]!.error!, /HTTP 400/);
});

test('arrival gaps average 1 / rate for any burstiness (gamma arrivals as vLLM draws them)', () => {
  for (const b of [0.5, 1, 3]) {
    const rng = new Rng(3, 0);
    const gaps = Array.from({ length: 20_000 }, () => gammaInterval(rng, 4, b));
    const mean = gaps.reduce((a, x) => a + x, 0) / gaps.length;
    const variance = gaps.reduce((a, x) => a + (x - mean) ** 2, 0) / gaps.length;
    assert.ok(Math.abs(mean - 0.25) < 0.01, `burstiness ${b}: mean ${mean}`);
    // A gamma of shape b and mean m has variance m^2 / b.
    assert.ok(Math.abs(variance / (0.0625 / b) - 1) < 0.08, `burstiness ${b}: variance ${variance}`);
  }
});

test('pagoda bench serve prints the table and appends it with --save', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pagoda-bench-serve-'));
  try {
    const file = join(dir, 'results.md');
    const { stdout } = await pagodaAsync([
      'bench',
      'serve',
      '--base-url',
      served.url,
      '--num-prompts',
      '3',
      '--random-input-len',
      '16',
      '--random-output-len',
      '4',
      '--ignore-eos',
      '--request-rate',
      '50',
      '--save',
      file,
    ]);
    assert.match(stdout, /^successful requests\s+3$/m);
    assert.match(stdout, /^generated tokens\s+12$/m);
    assert.match(stdout, /^median TTFT ms\s+\d+\.\d\d$/m);
    const saved = readFileSync(file, 'utf8');
    assert.match(saved, /## serve — .*the server at http:\/\/127\.0\.0\.1:\d+/);
    assert.match(saved, /\| successful requests \|/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bad flags are one line naming the flag', async () => {
  await assert.rejects(
    pagodaAsync(['bench', 'serve', '--base-url', served.url, '--endpoint', '/v1/embeddings']),
    (err: { stderr: string }) =>
      err.stderr === 'error: --endpoint /v1/embeddings: expected /v1/completions or /v1/chat/completions\n',
  );
  await assert.rejects(
    pagodaAsync(['bench', 'serve', '--base-url', served.url, '--request-rate', '0']),
    (err: { stderr: string }) => /--request-rate 0: expected a positive number/.test(err.stderr),
  );
});
