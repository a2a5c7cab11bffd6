import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineConfig } from '../../src/engine/engine.ts';
import { Rng } from '../../src/engine/sequence.ts';
import { acceptOrResample } from '../../src/engine/verify-draft.ts';
import { assertAllBlocksFree, type Collected, fakeEngine, runToEnd, submit } from '../helpers/engine.ts';
import { FakeRunner } from '../helpers/fake-model.ts';

/** Pearson's chi-square of observed counts against probabilities. */
function chiSquare(counts: readonly number[], probs: readonly number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  return counts.reduce((sum, c, i) => sum + (c - n * probs[i]!) ** 2 / (n * probs[i]!), 0);
}

// The 0.999 quantiles of chi-square with 3 and 4 degrees of freedom: a correct sampler exceeds them once in 1000 seeds.
const CHI2_3DOF = 16.27;
const CHI2_4DOF = 18.47;

test('one position of rejection sampling keeps the target distribution, whatever the draft distribution', () => {
  const p = Float64Array.from([0.4, 0.25, 0.2, 0.1, 0.05]);
  const q = Float32Array.from([0.1, 0.5, 0.05, 0.3, 0.05]);
  const rng = new Rng(1, 0);
  const counts = [0, 0, 0, 0, 0];
  const draw = (probs: ArrayLike<number>) => {
    let u = rng.next();
    for (let i = 0; i < probs.length; i++) if ((u -= probs[i]!) < 0) return i;
    return probs.length - 1;
  };
  let kept = 0;
  for (let i = 0; i < 20_000; i++) {
    const d = draw(q);
    const token = acceptOrResample(p, d, q, rng);
    if (token === d) kept++;
    counts[token]!++;
  }
  assert.ok(chiSquare(counts, [...p]) < CHI2_4DOF, `counts ${counts}`);
  // Acceptance is sum(min(p, q)) = 0.1 + 0.25 + 0.05 + 0.1 + 0.05 = 0.55.
  assert.ok(Math.abs(kept / 20_000 - 0.55) < 0.02, `accepted ${kept}`);
  // A point-mass draft (n-gram lookup) is accepted with p(token), and on rejection never repeated.
  const point = [0, 0, 0, 0, 0];
  for (let i = 0; i < 20_000; i++) point[acceptOrResample(p, 0, null, rng)]!++;
  assert.ok(chiSquare(point, [...p]) < CHI2_4DOF, `counts ${point}`);
});

/** Counts of the tokens drawn after the first, by a model with fixed logits, sampled with speculation. */
function sampledCounts(speculative: EngineConfig['speculative'], logitsOf: Logits, temperature: number): number[] {
  const engine = fakeEngine({ runner: new FakeRunner(64, 256, 4, logitsOf), numBlocks: 256, speculative });
  const results: Collected[] = [];
  for (let i = 0; i < 150; i++) {
    const params = { temperature, topK: 4, maxTokens: 24, ignoreEos: true, seed: i };
    results.push(submit(engine, { prompt: [1, 2, 1, 2], params }));
  }
  runToEnd(engine);
  const counts = [0, 0, 0, 0];
  for (const r of results) for (const t of r.tokenIds[0]!.slice(1)) counts[t - 1]!++;
  assert.equal(
    counts.reduce((a, b) => a + b),
    150 * 23,
    'a token outside the top 4 was drawn',
  );
  const s = engine.stats();
  assert.ok(s.specAcceptedTokens > 500 && s.specAcceptedTokens < s.specDraftTokens - 500, JSON.stringify(s));
  assertAllBlocksFree(engine);
  return counts;
}

type Logits = (context: readonly number[], vocab: number) => Float32Array;

/** Logits that never change: every output token is an independent draw from the same distribution. */
function fixedLogits(values: readonly number[]): Logits {
  return (_, vocab) => {
    const out = new Float32Array(vocab).fill(-40);
    out.set(values, 1);
    return out;
  };
}

const target = [1.2, 0.9, 0.3, -0.2, -0.5];
const temperature = 0.8;
// The tempered top 4 of the target.
const weights = target.slice(0, 4).map((l) => Math.exp(l / temperature));
const expected = weights.map((w) => w / weights.reduce((a, b) => a + b, 0));

test('sampled speculative decoding draws every position from the target distribution (n-gram, tempered, top-k)', () => {
  // n-gram lookup keeps proposing tokens it saw and must accept them only as often as the target would draw them.
  const ngram = { method: 'ngram' as const, numTokens: 3, ngram: { min: 1, max: 2 } };
  const counts = sampledCounts(ngram, fixedLogits(target), temperature);
  assert.ok(chiSquare(counts, expected) < CHI2_3DOF, `counts ${counts}, expected ${expected.map((p) => p * 3450)}`);
});

test('sampled speculative decoding with a draft model of another distribution keeps the target distribution', () => {
  const draftLogits = fixedLogits([-0.5, 0.4, 1.5, 0.2, 1.0]);
  const draft = { runner: new FakeRunner(64, 256, 4, draftLogits), numBlocks: 256, blockSize: 4, maxModelLen: 256 };
  const counts = sampledCounts({ method: 'draft', numTokens: 3, draft }, fixedLogits(target), temperature);
  assert.ok(chiSquare(counts, expected) < CHI2_3DOF, `counts ${counts}, expected ${expected.map((p) => p * 3450)}`);
});
