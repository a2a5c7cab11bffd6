import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { StepContext, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { ParallelBackend } from '../../src/backend/parallel/backend.ts';
import type { ModelConfig } from '../../src/loader/hf-config.ts';
import { loadDummyModel } from '../../src/models/dummy.ts';
import { loadModel } from '../../src/models/load.ts';
import { rankShare } from '../../src/models/tensor-parallel.ts';
import type { StepBatch } from '../../src/primitives/step-batch.ts';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';
import { maxAbsDiff, PagedSession, twoSequenceGreedy } from '../helpers/paged-session.ts';
import { writeTinyLlamaAsGranite } from '../helpers/random-folders.ts';

const ranksOf = (n: number) => new ParallelBackend(Array.from({ length: n }, () => new CpuBackend({ threads: 1 })));

const FIXTURES = [
  // At 4 ranks the 2 KV heads of tiny-llama (and most others) are replicated, at 2 and 4 tiny-mistral's one.
  ['tiny-llama', modelFixture('tiny-llama')],
  ['tiny-mistral', modelFixture('tiny-mistral')],
  ['tiny-qwen2', modelFixture('tiny-qwen2')],
  ['tiny-qwen3', modelFixture('tiny-qwen3')],
  ['tiny-phi3-longrope', modelFixture('tiny-phi3-longrope')],
  ['stories260K', sharedFixture('models/stories260K')],
  ['tiny-llama-256', sharedFixture('models/tiny-llama-256')],
  ['tiny-qwen2-256', sharedFixture('models/tiny-qwen2-256')],
  // Granite's multipliers: the embedding and residual scales run on every rank, the logits' after the gather.
  [
    'tiny-llama as Granite',
    {
      skip: modelFixture('tiny-llama').skip,
      path: modelFixture('tiny-llama').skip
        ? ''
        : writeTinyLlamaAsGranite(mkdtempSync(join(tmpdir(), 'pagoda-granite-')), modelFixture('tiny-llama').path),
    },
  ],
] as const;

for (const [name, fixture] of FIXTURES) {
  test(`${name}: logits over 2 and 4 ranks within 1e-5 of one rank over a prefill and decode steps, greedy ids equal`, {
    skip: fixture.skip,
  }, () => {
    const whole = twoSequenceGreedy(new PagedSession(loadModel(fixture.path, new CpuBackend({ threads: 1 }))), 4);
    for (const ranks of [2, 4]) {
      const model = loadModel(fixture.path, ranksOf(ranks));
      assert.equal(model.kvShape.numKvHeads, Math.max(1, model.config.numKvHeads / ranks), 'per-rank KV heads');
      // The embedding table is split by vocabulary too: each rank holds its slice of the rows.
      const { embedTable } = (model as unknown as { stack: { embedTable: Tensor } }).stack;
      assert.deepEqual(embedTable.shape, [model.config.vocabSize / ranks, model.config.hiddenSize], 'per-rank table');
      const split = twoSequenceGreedy(new PagedSession(model), 4);
      assert.equal(split.logits.length, whole.logits.length);
      const diff = Math.max(...whole.logits.map((l, i) => maxAbsDiff(l, split.logits[i]!)));
      assert.ok(diff <= 1e-5, `${ranks} ranks: max |Δlogit| ${diff}`);
      assert.deepEqual(split.ids, whole.ids, `${ranks} ranks: greedy ids`);
    }
  });
}

const tinyLlama = modelFixture('tiny-llama');

test('ranks that do not divide the attention heads are refused in one line with the numbers', {
  skip: tinyLlama.skip,
}, () => {
  assert.throws(
    () => loadModel(tinyLlama.path, ranksOf(3)),
    /^UserError: --tensor-parallel-size 3: the 4 attention heads do not divide into 3 ranks$/,
  );
});

test('KV heads that neither divide into the ranks nor divide them, and an MLP width that does not divide, are refused', () => {
  const cfg = { numHeads: 12, numKvHeads: 3, intermediateSize: 96, headDim: 8, vocabSize: 96 } as ModelConfig;
  assert.throws(() => rankShare(cfg, 2), /the 3 KV heads neither divide into 2 ranks nor divide 2/);
  assert.throws(
    () => rankShare({ ...cfg, numKvHeads: 6, intermediateSize: 97 }, 2),
    /the MLP's intermediate size 97 does not divide into 2 ranks/,
  );
  assert.deepEqual(
    (({ numHeads, numKvHeads, intermediateSize }) => [numHeads, numKvHeads, intermediateSize])(rankShare(cfg, 6)),
    [2, 1, 16],
  );
});

for (const name of ['tiny-gemma2', 'tiny-qwen3-moe', 'tiny-gpt2']) {
  const fixture = modelFixture(name);
  test(`${name} refuses more than one rank in one line naming its architecture`, { skip: fixture.skip }, () => {
    assert.throws(
      () => loadModel(fixture.path, ranksOf(2)),
      /^UserError: \S+config\.json: \w+ cannot run with --tensor-parallel-size 2 \(tensor parallelism covers/,
    );
    assert.throws(() => loadDummyModel(fixture.path, ranksOf(2)), /cannot run with --tensor-parallel-size 2/);
  });
}

/** A CPU backend with a forwardStep, as a CUDA rank's graph replays: counts the steps it ran. */
class SteppedCpu extends CpuBackend {
  steps = 0;
  forwardStep(batch: StepBatch, forward: (step: StepContext) => Tensor): Tensor {
    this.steps++;
    return forward(this.beginStep(batch));
  }
}

test('one rank runs every step through its own forwardStep (graph replays) with the same logits; several run eagerly', {
  skip: tinyLlama.skip,
}, () => {
  const whole = twoSequenceGreedy(new PagedSession(loadModel(tinyLlama.path, new CpuBackend({ threads: 1 }))), 3);
  const one = new SteppedCpu({ threads: 1 });
  const parallel = new ParallelBackend([one]);
  assert.equal(parallel.sampleTokens, undefined, 'no sampler where rank 0 has none');
  assert.deepEqual(twoSequenceGreedy(new PagedSession(loadModel(tinyLlama.path, parallel)), 3), whole);
  assert.equal(one.steps, 4);
  const two = [new SteppedCpu({ threads: 1 }), new SteppedCpu({ threads: 1 })];
  twoSequenceGreedy(new PagedSession(loadModel(tinyLlama.path, new ParallelBackend(two))), 1);
  assert.deepEqual(
    two.map((b) => b.steps),
    [0, 0],
  );
});
