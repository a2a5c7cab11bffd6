import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SamplingRow } from '../../src/backend/backend.ts';
import { resolveSamplingParams } from '../../src/engine/params.ts';
import { samplingDistribution } from '../../src/engine/sampling.ts';
import { Rng } from '../../src/engine/sequence.ts';
import type { SamplingParams } from '../../src/engine/types.ts';
import type { StepLogits } from '../../src/runner/model-runner.ts';
import type { ScheduledChunk } from '../../src/runner/step-batch.ts';
import { assertAllBlocksFree, fakeEngine, runToEnd, submit } from '../helpers/engine.ts';
import { FakeRunner } from '../helpers/fake-model.ts';
import { referenceSample, referenceScores } from '../helpers/sampling-reference.ts';

/**
 * The fake model behind a backend that also samples on its "device", with the CPU twin of kernels/sampling.cu;
 * counts which rows leave the device and what was sampled there.
 */
class DeviceSamplingRunner extends FakeRunner {
  hostRows = 0;
  sampled: SamplingRow[] = [];

  override execute(chunks: readonly ScheduledChunk[], copies: readonly [number, number][]): StepLogits {
    const logits = super.execute(chunks, copies);
    return {
      toHost: (rows) => {
        this.hostRows += rows.length;
        return logits.toHost(rows);
      },
      sample: (rows) => {
        this.sampled.push(...rows);
        return Int32Array.from(rows, (r) => referenceSample(logits.toHost([r.logitRow!]), r));
      },
    };
  }
}

function engines() {
  const device = new DeviceSamplingRunner(64, 64, 4);
  return { host: fakeEngine(), device: fakeEngine({ runner: device }), runner: device };
}

function prompts(n: number, seed: number): number[][] {
  const rng = new Rng(seed, 0);
  return Array.from({ length: n }, () =>
    Array.from({ length: 3 + Math.floor(rng.next() * 20) }, () => 1 + Math.floor(rng.next() * 63)),
  );
}

/** Runs every prompt with `params` batched on one engine; the token ids of each request's completions. */
function run(engine: ReturnType<typeof fakeEngine>, ps: number[][], params: Partial<SamplingParams>) {
  const results = ps.map((prompt) => submit(engine, { prompt, params }));
  runToEnd(engine);
  assertAllBlocksFree(engine);
  return results.map((r) => r.tokenIds);
}

test('greedy requests sampled on the device equal the CPU sampler, with every logits processor', () => {
  const cases: Partial<SamplingParams>[] = [
    { temperature: 0, maxTokens: 12 },
    { temperature: 0, maxTokens: 12, repetitionPenalty: 1.6 },
    { temperature: 0, maxTokens: 12, presencePenalty: 1.5, frequencyPenalty: 0.7 },
    {
      temperature: 0,
      maxTokens: 12,
      repetitionPenalty: 1.6,
      presencePenalty: 1,
      frequencyPenalty: 0.5,
      repeatLastN: 5,
    },
    { temperature: 0, maxTokens: 12, repetitionPenalty: 1.6, frequencyPenalty: 0.5, repeatLastN: -1 },
    { temperature: 0, maxTokens: 12, repetitionPenalty: 1.6, repeatLastN: 0 },
    { temperature: 0, maxTokens: 12, logitBias: { 7: 3, 9: -100 } },
    { temperature: 0, maxTokens: 12, minTokens: 6, stopTokenIds: [5, 6] },
  ];
  for (const params of cases) {
    const { host, device, runner } = engines();
    const ps = prompts(6, 3);
    assert.deepEqual(run(device, ps, params), run(host, ps, params), JSON.stringify(params));
    assert.equal(runner.hostRows, 0, 'no logits row left the device');
    assert.ok(runner.sampled.length > 0);
  }
});

test('allowed_token_ids and bad_words: the device draws what the CPU sampler draws, within the set, never a bad word', () => {
  const allowed = [3, 9, 17, 40, 41, 63];
  // Words of one token (always banned), of two (banned after their first) and of three.
  const badWords = [[41], [9, 17], [3, 40, 63]];
  const cases: Partial<SamplingParams>[] = [
    { temperature: 0, maxTokens: 16, ignoreEos: true, allowedTokenIds: allowed },
    { temperature: 0, maxTokens: 16, ignoreEos: true, badWords },
    { temperature: 0, maxTokens: 16, ignoreEos: true, allowedTokenIds: allowed, badWords },
  ];
  // Not vacuous: within the set alone, the answers say bad words.
  const unbanned = run(fakeEngine(), prompts(6, 21), cases[0]!).flat();
  const said = (ids: number[], word: number[]) => `,${ids.join(',')},`.includes(`,${word.join(',')},`);
  assert.ok(
    badWords.every((word) => unbanned.some((ids) => said(ids, word))),
    'each bad word is said when allowed',
  );
  for (const params of cases) {
    const { host, device, runner } = engines();
    const ps = prompts(6, 21);
    const got = run(device, ps, params);
    assert.deepEqual(got, run(host, ps, params), JSON.stringify(params));
    assert.equal(runner.hostRows, 0, 'no logits row left the device');
    for (const ids of got.flat()) {
      if (params.allowedTokenIds)
        assert.ok(
          ids.every((id) => allowed.includes(id)),
          `${ids} within the set`,
        );
      if (params.badWords) for (const word of badWords) assert.ok(!said(ids, word), `${ids} has no ${word}`);
    }
  }
});

test('min_tokens masks EOS on the device until the minimum is reached', () => {
  const { device, runner } = engines();
  run(device, prompts(4, 5), { temperature: 0, maxTokens: 8, minTokens: 3 });
  for (const r of runner.sampled) {
    const masked = r.logitBias?.[0] === Number.NEGATIVE_INFINITY;
    assert.equal(masked, r.step < 3, `step ${r.step}: EOS masked ${masked}`);
  }
});

test('requests that need the logits (logprobs, n > 1, beam search, typical_p, mirostat, prompt logprobs) sample on the host', () => {
  const cases: Partial<SamplingParams>[] = [
    { temperature: 0, maxTokens: 6, logprobs: 2 },
    { temperature: 0, maxTokens: 6, typicalP: 0.5 },
    { temperature: 0, maxTokens: 6, mirostat: 2 },
    { temperature: 0, maxTokens: 6, n: 2, bestOf: 3, seed: 4 },
    { temperature: 0, maxTokens: 6, useBeamSearch: true, n: 2, bestOf: 2 },
  ];
  for (const params of cases) {
    const { host, device, runner } = engines();
    const ps = prompts(3, 8);
    assert.deepEqual(run(device, ps, params), run(host, ps, params), JSON.stringify(params));
    assert.equal(runner.sampled.length, 0, 'nothing sampled on the device');
    assert.ok(runner.hostRows > 0);
  }
  // Prompt logprobs need the prompt's rows on the host; the next token itself can still be drawn on the device.
  const { device, runner } = engines();
  const [prompt] = prompts(1, 9);
  const r = submit(device, { prompt: prompt!, params: { temperature: 0, maxTokens: 4, promptLogprobs: 1 } });
  runToEnd(device);
  assert.equal(runner.hostRows, prompt!.length - 1);
  assert.equal(runner.sampled.length, 4);
  assert.equal(r.outputs[0]!.promptLogprobs!.length, prompt!.length);
});

test('a mixed batch copies only the rows that need the host', () => {
  const { device, runner } = engines();
  const ps = prompts(5, 12);
  const plain = ps
    .slice(0, 4)
    .map((prompt) => submit(device, { prompt, params: { maxTokens: 5, seed: 1, ignoreEos: true } }));
  const withLogprobs = submit(device, { prompt: ps[4]!, params: { maxTokens: 5, logprobs: 1, ignoreEos: true } });
  runToEnd(device);
  assert.equal(runner.hostRows, 5, 'one row per token of the logprobs request');
  assert.equal(runner.sampled.length, 20);
  assert.ok(plain.every((r) => r.tokenIds[0]!.length === 5));
  assert.equal(withLogprobs.outputs.flatMap((o) => o.outputs[0]?.logprobs ?? []).length, 5);
  assertAllBlocksFree(device);
});

test('seeded device sampling is reproducible and independent of the batch', () => {
  const ps = prompts(4, 21);
  const params = { temperature: 0.8, topK: 20, topP: 0.9, maxTokens: 10, seed: 77, ignoreEos: true };
  const batched = run(engines().device, ps, params);
  const alone = ps.map((p) => run(engines().device, [p], params)[0]);
  assert.deepEqual(batched, alone);
  const other = run(engines().device, ps, { ...params, seed: 78 });
  assert.notDeepEqual(other, batched, 'another seed draws other tokens');
});

test("the device sampler's kept set (its CPU twin) equals the CPU sampler's candidates for every filter mix", () => {
  const rng = new Rng(33, 0);
  const combos: Partial<SamplingParams>[] = [
    { topK: 5 },
    { topP: 0.7 },
    { minP: 0.2 },
    { topK: 20, topP: 0.8 },
    { topP: 0.7, minP: 0.3 },
    { topK: 8, minP: 0.1 },
    { topK: 30, topP: 0.9, minP: 0.05 },
  ];
  for (let trial = 0; trial < 40; trial++) {
    const logits = Float32Array.from({ length: 64 }, () => (rng.next() - 0.5) * 8);
    const temperature = 0.5 + rng.next();
    for (const c of combos) {
      const p = { ...resolveSamplingParams({ temperature, ...c }), maxTokens: 1 };
      const row: SamplingRow = { ...p, seed: 1, step: 0 };
      const { kept } = referenceScores(logits, row);
      const want = [...samplingDistribution(logits, p).ids].sort((a, b) => a - b);
      const got = kept.flatMap((k, i) => (k ? [i] : []));
      assert.deepEqual(got, want, `${JSON.stringify(c)} at temperature ${temperature}`);
    }
  }
});

test('token ids the sampler would index with are checked at submission', () => {
  const engine = fakeEngine();
  const bad: [Partial<SamplingParams>, RegExp][] = [
    [{ logitBias: { 64: 1 } }, /logit_bias token id 64 is outside the vocabulary \(0\.\.63\)/],
    [{ logitBias: { '02': 1 } as Record<number, number> }, /logit_bias key "02" is not a token id/],
    [{ stopTokenIds: [5, 70] }, /stop_token_ids: 70 is outside the vocabulary/],
    [{ allowedTokenIds: [3, 64] }, /allowed_token_ids: 64 is outside the vocabulary/],
    [{ badWords: [[3], [4, -1]] }, /bad_words: token id -1 is outside the vocabulary/],
  ];
  for (const [params, message] of bad) assert.throws(() => submit(engine, { prompt: [1, 2], params }), message);
  assertAllBlocksFree(engine);
});
