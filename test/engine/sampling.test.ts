import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveSamplingParams } from '../../src/engine/params.ts';
import {
  applyLogitsProcessors,
  logSoftmax,
  penaltyTokens,
  sampleToken,
  samplingDistribution,
  topEntries,
} from '../../src/engine/sampling.ts';
import { Rng } from '../../src/engine/sequence.ts';
import type { SamplingParams } from '../../src/engine/types.ts';

const params = (p: Partial<SamplingParams>): SamplingParams => ({ maxTokens: 16, ...resolveSamplingParams(p) });

/** Logits whose softmax at temperature 1 is exactly `probs`. */
const logitsOf = (probs: number[]) => Float32Array.from(probs, (p) => Math.log(p));

const close = (a: number[], b: number[]) => {
  assert.equal(a.length, b.length, `${a} vs ${b}`);
  for (const [i, x] of a.entries()) assert.ok(Math.abs(x - b[i]!) < 1e-6, `${a} vs ${b}`);
};

test('top_k keeps the k most likely tokens and renormalizes', () => {
  const d = samplingDistribution(logitsOf([0.1, 0.4, 0.2, 0.3]), params({ topK: 2 }));
  assert.deepEqual(d.ids, [1, 3]);
  close(d.probs, [0.4 / 0.7, 0.3 / 0.7]);
});

test('top_p keeps the smallest set whose mass reaches p (the crossing token included)', () => {
  const d = samplingDistribution(logitsOf([0.1, 0.4, 0.2, 0.3]), params({ topP: 0.6 }));
  assert.deepEqual(d.ids, [1, 3]);
  const all = samplingDistribution(logitsOf([0.1, 0.4, 0.2, 0.3]), params({ topP: 0.71 }));
  assert.deepEqual(all.ids, [1, 3, 2]);
  close(all.probs, [0.4 / 0.9, 0.3 / 0.9, 0.2 / 0.9]);
});

test('min_p drops tokens below min_p times the top probability', () => {
  const d = samplingDistribution(logitsOf([0.05, 0.5, 0.2, 0.25]), params({ minP: 0.45 }));
  assert.deepEqual(d.ids, [1, 3]);
  close(d.probs, [0.5 / 0.75, 0.25 / 0.75]);
});

test('temperature sharpens and flattens the distribution', () => {
  const d = samplingDistribution(logitsOf([0.2, 0.8]), params({ temperature: 0.5 }));
  // p^(1/T) renormalized: 0.04 : 0.64
  close(d.probs, [0.04 / 0.68, 0.64 / 0.68]);
});

test('repetition, frequency and presence penalties follow vLLM', () => {
  const logits = Float32Array.from([2, -2, 1, 3, 0.5]);
  applyLogitsProcessors(logits, params({ repetitionPenalty: 2 }), { promptIds: [0], outputIds: [1], stopIds: [] });
  // positive logits are divided, negative ones multiplied; only tokens seen in prompt or output.
  assert.deepEqual([...logits], [1, -4, 1, 3, 0.5]);

  const l2 = Float32Array.from([2, -2, 1, 3, 0.5]);
  applyLogitsProcessors(l2, params({ frequencyPenalty: 0.5, presencePenalty: 0.25 }), {
    promptIds: [4],
    outputIds: [3, 3, 2],
    stopIds: [],
  });
  // token 3 twice: 3 - 2*0.5 - 0.25; token 2 once: 1 - 0.5 - 0.25; prompt tokens are not penalized.
  assert.deepEqual([...l2], [2, -2, 0.25, 1.75, 0.5]);
});

test("repeat_last_n: the penalties see the window's tokens and counts (llama.cpp's rule); -1 is all of them, 0 none", () => {
  const history = { promptIds: [0, 4], outputIds: [3, 3, 2], stopIds: [] };
  const penalized = (repeatLastN: number) => {
    const logits = Float32Array.from([2, -2, 1, 3, 0.5]);
    const p = params({ repetitionPenalty: 2, frequencyPenalty: 0.5, presencePenalty: 0.25, repeatLastN });
    applyLogitsProcessors(logits, p, history);
    return [...logits];
  };
  // Window [3, 3, 2]: token 3 is 3 / 2 - (2 * 0.5 + 0.25), token 2 is 1 / 2 - (0.5 + 0.25); the prompt is outside.
  assert.deepEqual(penalized(3), [2, -2, -0.25, 0.25, 0.5]);
  // Window [4, 3, 3, 2]: the last prompt token now counts once, for frequency and presence too.
  assert.deepEqual(penalized(4), [2, -2, -0.25, 0.25, -0.5]);
  assert.deepEqual(penalized(-1), [0.25, -2, -0.25, 0.25, -0.5]);
  assert.deepEqual(penalized(0), [2, -2, 1, 3, 0.5]);
  const { ids, counts } = penaltyTokens(params({ repetitionPenalty: 2, repeatLastN: 4 }), history);
  assert.deepEqual(ids, [4, 3, 2]);
  assert.deepEqual(counts, [1, 2, 1]);
  // Unset, vLLM's rule: prompt tokens for repetition only (count 0), the output's counts.
  const vllm = penaltyTokens(params({ repetitionPenalty: 2 }), history);
  assert.deepEqual(vllm.ids, [0, 4, 3, 2]);
  assert.deepEqual(vllm.counts, [0, 0, 2, 1]);
  assert.throws(() => resolveSamplingParams({ repeatLastN: -2 }), /repeat_last_n=-2: expected an integer >= -1/);
});

test('typical_p keeps the tokens whose surprise is nearest the entropy until their mass reaches it', () => {
  // Entropy 1.142 nats; surprises 0.693, 1.204, 1.897, 2.996: nearest first is token 1, then 0, 2, 3.
  const logits = logitsOf([0.5, 0.3, 0.15, 0.05]);
  assert.deepEqual(samplingDistribution(logits, params({ typicalP: 0.25 })).ids, [1]);
  const two = samplingDistribution(logits, params({ typicalP: 0.7 }));
  assert.deepEqual(two.ids, [1, 0]);
  close(two.probs, [0.3 / 0.8, 0.5 / 0.8]);
  assert.deepEqual(samplingDistribution(logits, params({ typicalP: 0.9 })).ids, [1, 0, 2]);
  // top_p after it ranks the survivors most likely first: 0.5 / 0.95 then 0.3 / 0.95 crosses 0.6.
  assert.deepEqual(samplingDistribution(logits, params({ typicalP: 0.9, topP: 0.6 })).ids, [0, 1]);
  // The atypically likely token 0 is never drawn at typical_p 0.25.
  const rng = new Rng(5, 0);
  for (let i = 0; i < 200; i++) assert.equal(sampleToken(logits, params({ typicalP: 0.25 }), rng), 1);
  assert.throws(() => resolveSamplingParams({ typicalP: 0 }), /typical_p=0: expected a number in \(0, 1\]/);
});

test('logit_bias and min_tokens', () => {
  const logits = Float32Array.from([5, 1, 1]);
  applyLogitsProcessors(logits, params({ logitBias: { 1: 10 }, minTokens: 2 }), {
    promptIds: [],
    outputIds: [2],
    stopIds: [0],
  });
  assert.deepEqual([...logits], [Number.NEGATIVE_INFINITY, 11, 1]);
});

test('greedy takes the argmax; a seeded draw is reproducible and follows the distribution', () => {
  const logits = logitsOf([0.1, 0.6, 0.3]);
  assert.equal(sampleToken(logits, params({ temperature: 0 }), new Rng(1, 0)), 1);
  const draw = (seed: number) => {
    const rng = new Rng(seed, 0);
    return Array.from({ length: 50 }, () => sampleToken(logits, params({}), rng));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
  const rng = new Rng(3, 0);
  const counts = [0, 0, 0];
  for (let i = 0; i < 20000; i++) counts[sampleToken(logits, params({}), rng)]!++;
  close(
    counts.map((c) => Math.round((c / 20000) * 20) / 20),
    [0.1, 0.6, 0.3],
  );
});

test('log-softmax and top entries', () => {
  const lp = logSoftmax(logitsOf([0.1, 0.6, 0.3]));
  close([...lp].map(Math.exp), [0.1, 0.6, 0.3]);
  assert.deepEqual(
    topEntries(Float32Array.from([1, 5, 3, 5, 0]), 3).map((e) => e.id),
    [1, 3, 2],
  );
});

test('invalid sampling parameters are one-line user errors naming the field', () => {
  assert.throws(() => resolveSamplingParams({ topP: 0 }), /top_p=0: expected a number in \(0, 1\]/);
  assert.throws(() => resolveSamplingParams({ n: 2, bestOf: 1 }), /best_of=1: expected an integer >= n \(2\)/);
  assert.throws(() => resolveSamplingParams({ logprobs: -1 }), /logprobs=-1: expected null or an integer >= 0/);
});

test('top_k with top_p and min_p combined; the unfiltered draw matches the distribution', () => {
  const probs = [0.05, 0.3, 0.1, 0.25, 0.2, 0.1];
  const d = samplingDistribution(logitsOf(probs), params({ topK: 4, topP: 0.8, minP: 0.5 }));
  // top 4: 0.3, 0.25, 0.2, 0.1; min_p 0.5 drops 0.1; top_p 0.8 of (0.3 + 0.25 + 0.2) keeps all three (0.4 + 0.33 < 0.8).
  assert.deepEqual(d.ids, [1, 3, 4]);
  close(d.probs, [0.3 / 0.75, 0.25 / 0.75, 0.2 / 0.75]);
  const rng = new Rng(9, 0);
  const counts = probs.map(() => 0);
  for (let i = 0; i < 20000; i++) counts[sampleToken(logitsOf(probs), params({}), rng)]!++;
  close(
    counts.map((c) => Math.round((c / 20000) * 20) / 20),
    probs.map((x) => Math.round(x * 20) / 20),
  );
});
