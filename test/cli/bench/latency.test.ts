import assert from 'node:assert/strict';
import { test } from 'node:test';
import { quantile, runLatency } from '../../../src/cli/bench/latency.ts';
import { assertAllBlocksFree, fakeEngine } from '../../helpers/engine.ts';

test('the latency workload times each iteration and never reuses a prompt', async () => {
  const engine = fakeEngine({ manual: false, numBlocks: 40 });
  const w = { batchSize: 3, inputLen: 9, outputLen: 6, warmupIters: 1, iters: 4, seed: 2 };
  const r = await runLatency(engine, 64, w);
  assert.equal(r.latencies.length, 4);
  assert.ok(r.latencies.every((s) => s > 0));
  assert.ok(r.ttftMs > 0 && r.msPerOutputToken > 0);
  const s = engine.stats();
  assert.equal(s.generationTokens, 5 * 3 * 6, 'every request made exactly output-len tokens');
  assert.equal(s.promptTokensComputed, 5 * 3 * 9, 'fresh prompts: no prefix-cache hit');
  await engine.shutdown();
  assertAllBlocksFree(engine);
});

test('quantile interpolates like numpy', () => {
  assert.equal(quantile([3, 1, 2, 4], 0.5), 2.5);
  assert.ok(Math.abs(quantile([1, 2, 3, 4, 10], 0.9) - 7.6) < 1e-12);
  assert.equal(quantile([5], 0.9), 5);
});
