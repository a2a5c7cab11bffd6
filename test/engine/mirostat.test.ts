import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type MirostatState, mirostatToken } from '../../src/engine/mirostat.ts';
import { resolveSamplingParams } from '../../src/engine/params.ts';
import { Rng } from '../../src/engine/sequence.ts';
import type { SamplingParams } from '../../src/engine/types.ts';
import { assertAllBlocksFree, fakeEngine, runToEnd, submit } from '../helpers/engine.ts';

const params = (p: Partial<SamplingParams>): SamplingParams => ({ maxTokens: 16, ...resolveSamplingParams(p) });
const probs = [0.05, 0.5, 0.3, 0.15];
const logits = Float32Array.from(probs, Math.log);
const fresh = (seed: number): MirostatState => ({ mirostatMu: null, rng: new Rng(seed, 0) });

for (const version of [1, 2]) {
  test(`mirostat ${version}: a low target surprise keeps only the most likely token, and mu moves by eta times the error`, () => {
    const state = fresh(1);
    const p = params({ mirostat: version, mirostatTau: 0.1, mirostatEta: 0.1 });
    for (let i = 0; i < 20; i++) assert.equal(mirostatToken(logits, p, state), 1);
    // The one candidate has surprise 0: mu starts at 2 tau and rises by eta tau a draw.
    assert.ok(Math.abs(state.mirostatMu! - (0.2 + 20 * 0.01)) < 1e-9, String(state.mirostatMu));
  });

  test(`mirostat ${version}: a high target surprise keeps every token, drawn as often as its probability`, () => {
    const state = fresh(2);
    const p = params({ mirostat: version, mirostatTau: 10 });
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) counts[mirostatToken(logits, p, state)]!++;
    for (const [id, c] of counts.entries()) assert.ok(Math.abs(c / 20000 - probs[id]!) < 0.015, `${counts}`);
    // Every surprise (at most log2 20) is below tau, so mu only grew.
    assert.ok(state.mirostatMu! > 20);
  });
}

test('mirostat 2 cuts at surprise mu, renormalizes, and learns from the drawn token', () => {
  // mu = 2 tau = 2: tokens with -log2 p <= 2 (p >= 0.25) stay, tokens 1 and 2, renormalized to 0.625 and 0.375.
  const p = params({ mirostat: 2, mirostatTau: 1, mirostatEta: 0.5 });
  const seen = new Set<number>();
  for (let seed = 0; seed < 200; seed++) {
    const state = fresh(seed);
    const token = mirostatToken(logits, p, state);
    seen.add(token);
    const surprise = -Math.log2(token === 1 ? 0.625 : 0.375);
    assert.ok(Math.abs(state.mirostatMu! - (2 - 0.5 * (surprise - 1))) < 1e-6);
  }
  assert.deepEqual([...seen].sort(), [1, 2]);
});

test('mirostat: the same seed draws the same tokens; temperature 0 is greedy and leaves mu alone', () => {
  const p = params({ mirostat: 2, mirostatTau: 3 });
  const draws = (seed: number) => {
    const state = fresh(seed);
    return Array.from({ length: 40 }, () => mirostatToken(logits, p, state));
  };
  assert.deepEqual(draws(7), draws(7));
  assert.notDeepEqual(draws(7), draws(8));
  const greedy = fresh(3);
  assert.equal(mirostatToken(logits, params({ mirostat: 1, temperature: 0 }), greedy), 1);
  assert.equal(greedy.mirostatMu, null);
  assert.throws(() => resolveSamplingParams({ mirostat: 3 }), /mirostat=3: expected 0, 1 or 2/);
  assert.throws(() => resolveSamplingParams({ mirostatTau: 0 }), /mirostat_tau=0/);
});

test('an engine request with mirostat and typical_p draws on the host, reproducibly by seed, and frees its blocks', () => {
  const draw = (params: Partial<SamplingParams>) => {
    const engine = fakeEngine();
    const r = submit(engine, { prompt: [3, 9, 27, 17], params: { maxTokens: 12, ignoreEos: true, ...params } });
    runToEnd(engine);
    assertAllBlocksFree(engine);
    return r.tokenIds[0]!;
  };
  for (const params of [
    { mirostat: 1, seed: 4 },
    { mirostat: 2, mirostatTau: 2, seed: 4 },
    { typicalP: 0.6, seed: 4 },
  ]) {
    const tokens = draw(params);
    assert.equal(tokens.length, 12, JSON.stringify(params));
    assert.deepEqual(draw(params), tokens, JSON.stringify(params));
  }
});
