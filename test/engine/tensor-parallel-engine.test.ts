import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { ParallelBackend } from '../../src/backend/parallel/backend.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { loadModel } from '../../src/models/load.ts';
import type { Model } from '../../src/models/model.ts';
import { assertAllBlocksFree, runToEnd, submit } from '../helpers/engine.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { modelEngine } from '../helpers/model-engine.ts';

const tinyMistral = modelFixture('tiny-mistral');

/** An engine with a small cache (preemptions) and prefix caching, over `model`. */
function engineFor(dir: string, model: Model): Engine {
  return modelEngine(dir, model, { numBlocks: 10 });
}

/** 12 greedy requests sharing a 20-token prefix, submitted together, one with two completions (copy-on-write). */
function greedyIds(dir: string, model: Model): number[][][] {
  const engine = engineFor(dir, model);
  const prefix = Array.from({ length: 20 }, (_, i) => 3 + ((i * 53) % 1000));
  const results = Array.from({ length: 12 }, (_, j) =>
    submit(engine, {
      prompt: [...prefix, ...Array.from({ length: 3 + j }, (_, i) => 3 + ((j * 97 + i * 31) % 1000))],
      params: { temperature: 0, maxTokens: 16, ignoreEos: true, n: j === 0 ? 2 : 1 },
    }),
  );
  runToEnd(engine);
  assert.ok(engine.stats().preemptions > 0, 'expected preemptions with a 10-block cache');
  assert.ok(engine.stats().prefixCacheHits > 0, 'expected prefix-cache hits on the shared prefix');
  assertAllBlocksFree(engine);
  return results.map((r) => r.tokenIds);
}

test('an engine over 2 simulated ranks (one KV head replicated) gives the greedy ids of one rank, preemptions and prefix hits included', {
  skip: tinyMistral.skip,
}, () => {
  const one = greedyIds(tinyMistral.path, loadModel(tinyMistral.path, new CpuBackend({ threads: 1 })));
  const ranks = new ParallelBackend([new CpuBackend({ threads: 1 }), new CpuBackend({ threads: 1 })]);
  assert.deepEqual(greedyIds(tinyMistral.path, loadModel(tinyMistral.path, ranks)), one);
});
