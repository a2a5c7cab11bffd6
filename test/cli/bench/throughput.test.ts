import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runThroughput } from '../../../src/cli/bench/throughput.ts';
import { Rng } from '../../../src/engine/sequence.ts';
import { assertAllBlocksFree, fakeEngine } from '../../helpers/engine.ts';

test('the throughput workload runs every request to its output length and counts the tokens', async () => {
  const engine = fakeEngine({ manual: false, numBlocks: 40 });
  const w = {
    numPrompts: 12,
    inputLen: [3, 30] as [number, number],
    outputLen: [2, 20] as [number, number],
    seed: 4,
    temperature: 0.6,
  };
  const r = await runThroughput(engine, 64, w);
  // The same draws as the workload: prompt length then output length per request.
  const rng = new Rng(w.seed, 0);
  let prompt = 0;
  let output = 0;
  for (let i = 0; i < w.numPrompts; i++) {
    const p = 3 + Math.floor(rng.next() * 28);
    for (let j = 0; j < p; j++) rng.next();
    prompt += p;
    output += 2 + Math.floor(rng.next() * 19);
  }
  assert.equal(r.requests, 12);
  assert.equal(r.promptTokens, prompt);
  assert.equal(r.outputTokens, output);
  assert.ok(r.outputTokensPerSecond > 0 && r.totalTokensPerSecond > r.outputTokensPerSecond);
  await engine.shutdown();
  assertAllBlocksFree(engine);
});

test('under KV compression the throughput result counts the blocks it saved', async () => {
  const engine = fakeEngine({ manual: false, numBlocks: 64, kvCompression: { method: 'snapkv', budget: 8 } });
  const w = {
    numPrompts: 4,
    inputLen: [30, 30] as [number, number],
    outputLen: [3, 3] as [number, number],
    seed: 1,
    temperature: 0,
  };
  const r = await runThroughput(engine, 64, w);
  // 30 tokens in 8 blocks of 4, kept: 8 entries in 2 blocks.
  assert.equal(r.kvBlocksSaved, 4 * (8 - 2));
  await engine.shutdown();
  assertAllBlocksFree(engine);
});
