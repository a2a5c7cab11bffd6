import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import type { Engine } from '../../src/engine/engine.ts';
import type { SpeculativeConfig } from '../../src/engine/speculation.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadModel } from '../../src/models/load.ts';
import type { Model } from '../../src/models/model.ts';
import { ModelRunner } from '../../src/runner/model-runner.ts';
import { assertAllBlocksFree, type Collected, submit } from '../helpers/engine.ts';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';
import { modelEngine } from '../helpers/model-engine.ts';

const tinyLlama = modelFixture('tiny-llama');
const stories = sharedFixture('models/stories260K');

function engineFor(dir: string, model: Model, speculative?: SpeculativeConfig, numBlocks = 128): Engine {
  return modelEngine(dir, model, { numBlocks, speculative });
}

/** The requests, submitted two steps apart (continuous batching), to the end; their token ids and texts. */
function run(engine: Engine, prompts: number[][], maxTokens: number): { ids: number[][]; text: string[] } {
  const results: Collected[] = [];
  for (let step = 0; results.length < prompts.length || engine.stats().running + engine.stats().waiting > 0; step++) {
    if (step % 2 === 0 && results.length < prompts.length) {
      const params = { temperature: 0, maxTokens, ignoreEos: true };
      results.push(submit(engine, { prompt: prompts[results.length]!, params }));
    }
    engine.step();
    assert.ok(step < 20_000, 'engine did not finish');
  }
  assertAllBlocksFree(engine);
  return { ids: results.map((r) => r.tokenIds[0]!), text: results.map((r) => r.text[0]!) };
}

const ngram = (numTokens: number): SpeculativeConfig => ({ method: 'ngram', numTokens, ngram: { min: 1, max: 4 } });

test('stories260K: greedy output with n-gram speculation equals the output without, with drafts accepted', {
  skip: stories.skip,
}, () => {
  const model = loadModel(stories.path, new CpuBackend());
  const tok = loadTokenizer(stories.path);
  const prompts = ['Once upon a time', 'Lily and Tom went to the park. Lily', 'The cat saw a big dog.'].map((t) =>
    tok.encode(t),
  );
  const plain = run(engineFor(stories.path, model), prompts, 120);
  for (const k of [1, 5]) {
    const engine = engineFor(stories.path, model, ngram(k));
    assert.deepEqual(run(engine, prompts, 120), plain, `k = ${k}`);
    const s = engine.stats();
    assert.ok(s.specAcceptedTokens > 20, `accepted ${s.specAcceptedTokens} of ${s.specDraftTokens}`);
  }
});

test('tiny-llama: greedy output with n-gram speculation equals the output without, preempting in a small cache', {
  skip: tinyLlama.skip,
}, () => {
  const model = loadModel(tinyLlama.path, new CpuBackend());
  // Repetitive prompts, so lookup finds something to propose.
  const prompts = Array.from({ length: 6 }, (_, i) => {
    const unit = [100 + i, 200 + i, 300 + i, 400 + i];
    return [...unit, ...unit, ...unit, 500 + i];
  });
  const plain = run(engineFor(tinyLlama.path, model, undefined, 12), prompts, 40);
  const engine = engineFor(tinyLlama.path, model, ngram(4), 12);
  assert.deepEqual(run(engine, prompts, 40).ids, plain.ids);
  assert.ok(engine.stats().specDraftTokens > 0);
  assert.ok(engine.stats().preemptions > 0, 'expected preemptions with a 12-block cache');
});

const tinyLlama256 = modelFixture('tiny-llama-256');

test('draft models: tiny-llama-256 drafted by itself and by tiny-llama (same vocabulary) keeps its greedy output', {
  skip: tinyLlama.skip || tinyLlama256.skip,
}, () => {
  const backend = new CpuBackend();
  const target = loadModel(tinyLlama256.path, backend);
  const prompts = Array.from({ length: 5 }, (_, i) =>
    Array.from({ length: 6 + 3 * i }, (_, j) => 50 + ((i * 37 + j * 11) % 900)),
  );
  const plain = run(engineFor(tinyLlama256.path, target), prompts, 30);
  for (const dir of [tinyLlama256.path, tinyLlama.path]) {
    const model = loadModel(dir, backend);
    const draft = { runner: new ModelRunner(model, 64, 16), numBlocks: 64, blockSize: 16, maxModelLen: 2048 };
    const engine = engineFor(tinyLlama256.path, target, { method: 'draft', numTokens: 4, draft });
    assert.deepEqual(run(engine, prompts, 30).ids, plain.ids, dir);
    const s = engine.stats();
    if (dir === tinyLlama256.path) assert.equal(s.specAcceptedTokens, s.specDraftTokens, 'the target rejected itself');
    assert.ok(s.specDraftTokens > 50, `proposed ${s.specDraftTokens}`);
  }
});
