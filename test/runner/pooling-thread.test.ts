import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { PoolingEngine } from '../../src/engine/pooling-engine.ts';
import { type LoadedPoolingEngine, loadPoolingEngine } from '../../src/engine/pooling-load.ts';
import type { PoolingInput } from '../../src/runner/pooling-batch.ts';
import { startPoolingThread } from '../../src/runner/pooling-thread.ts';
import { UserError } from '../../src/util/errors.ts';
import { FolderVariants } from '../helpers/bert-variants.ts';
import { fakeTokenizer } from '../helpers/fake-model.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { maxAbsDiff } from '../helpers/paged-session.ts';

const quiet = { device: 'cpu', cpuThreads: 1, log: () => {} } as const;

/** The fixture's engine with the runner thread on and off; both shut down once `use` is done. */
async function bothWays(dir: string, use: (on: LoadedPoolingEngine, off: LoadedPoolingEngine) => Promise<void>) {
  const on = await loadPoolingEngine(dir, { ...quiet, runnerThread: true });
  const off = await loadPoolingEngine(dir, { ...quiet, runnerThread: false });
  try {
    await use(on, off);
  } finally {
    await Promise.all([on.engine.shutdown(), off.engine.shutdown()]);
  }
}

/** Every input its own request, all at once (several steps, two in flight through the thread). */
const poolEach = (e: LoadedPoolingEngine, inputs: PoolingInput[]) =>
  Promise.all(inputs.map((input) => e.engine.pool([input]).then(([row]) => row!)));

const bits = (rows: Float32Array[]) => rows.map((r) => [...new Uint32Array(r.slice().buffer)]);

for (const name of ['tiny-bert', 'tiny-qwen3-embed']) {
  const fixture = modelFixture(name);
  test(`${name} through the runner thread: sentence-transformers' embeddings, bit for bit the rows of this thread`, {
    skip: fixture.skip,
  }, async () => {
    const g = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')) as {
      input_ids: number[][];
      embeddings: number[][];
    };
    await bothWays(fixture.path, async (on, off) => {
      // What the main thread keeps of the model comes back from the thread as this thread loads it.
      for (const key of ['task', 'maxModelLen', 'maxNumBatchedTokens', 'backend', 'config', 'sentenceTransformers'])
        assert.deepEqual(on[key as keyof LoadedPoolingEngine], off[key as keyof LoadedPoolingEngine], key);
      const inputs = g.input_ids.map((tokenIds) => ({ tokenIds }));
      const [threaded, here] = await Promise.all([poolEach(on, inputs), poolEach(off, inputs)]);
      for (const [i, row] of threaded.entries()) assert.ok(maxAbsDiff(row, g.embeddings[i]!) < 1e-4, `sentence ${i}`);
      assert.deepEqual(bits(threaded), bits(here));
    });
  });
}

for (const name of ['tiny-bert-reranker', 'tiny-xlmr-reranker']) {
  const fixture = modelFixture(name);
  test(`${name} through the runner thread: CrossEncoder's scores, bit for bit those of this thread`, {
    skip: fixture.skip,
  }, async () => {
    const g = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')) as {
      pairs: { input_ids: number[]; token_type_ids?: number[]; score: number }[];
    };
    await bothWays(fixture.path, async (on, off) => {
      assert.equal(on.task, 'score');
      const inputs = g.pairs.map((p) => ({ tokenIds: p.input_ids, tokenTypeIds: p.token_type_ids }));
      const [threaded, here] = await Promise.all([poolEach(on, inputs), poolEach(off, inputs)]);
      for (const [i, p] of g.pairs.entries()) assert.ok(Math.abs(threaded[i]![0]! - p.score) < 1e-5, `pair ${i}`);
      assert.deepEqual(bits(threaded), bits(here));
    });
  });
}

const bert = modelFixture('tiny-bert');
describe('the runner thread', { skip: bert.skip }, () => {
  const variants = new FolderVariants(bert.path);
  after(() => variants.cleanup());

  test('a load that fails in the thread is the same one-line UserError as on this thread', async () => {
    const config = JSON.parse(readFileSync(join(bert.path, 'config.json'), 'utf8'));
    const unweighted = variants.withFiles({});
    rmSync(join(unweighted, 'model.safetensors'));
    const broken = [
      [
        variants.withFiles({ 'config.json': { ...config, hidden_act: 'quick_gelu' } }),
        /hidden_act "quick_gelu" is not supported/,
      ],
      [unweighted, /no model\.safetensors/],
    ] as const;
    for (const [dir, why] of broken) {
      const errors: unknown[] = [];
      for (const runnerThread of [false, true]) {
        await loadPoolingEngine(dir, { ...quiet, runnerThread }).then(
          () => assert.fail('loaded'),
          (e: unknown) => errors.push(e),
        );
      }
      const [here, threaded] = errors as [Error, Error];
      assert.ok(threaded instanceof UserError, String(threaded));
      assert.match(threaded.message, why);
      assert.equal(threaded.message, here.message);
      assert.doesNotMatch(threaded.message, /\n/);
    }
  });

  test('a thread that dies fails the steps in flight and every later request with its error; shutdown still ends', async () => {
    const entry = new URL('../helpers/failing-pooling-worker.mjs', import.meta.url);
    const options = { device: 'cpu', dummy: false, maxNumBatchedTokens: 512, maxNumSeqs: 1, cpuThreads: 1 } as const;
    const { runner, release } = await startPoolingThread(bert.path, options, { log: () => {} }, entry);
    const engine = new PoolingEngine({
      runner,
      tokenizer: fakeTokenizer,
      maxModelLen: 512,
      maxNumBatchedTokens: 512,
      maxNumSeqs: 1,
      release,
    });
    // One input a step: two steps go to the thread at once, and it dies on the first.
    const asked = [5, 6, 7].map((id) => engine.pool([{ tokenIds: [101, id, 102] }]));
    const outcomes = await Promise.allSettled(asked);
    for (const o of outcomes) {
      assert.equal(o.status, 'rejected');
      assert.match((o as PromiseRejectedResult).reason.message, /runner thread failed: simulated runner failure/);
    }
    await assert.rejects(engine.pool([{ tokenIds: [101, 8, 102] }]), /runner thread failed: simulated runner failure/);
    await engine.shutdown();
  });

  test('shutdown frees the weights in the thread and waits for it to end', async () => {
    const options = { device: 'cpu', dummy: false, maxNumBatchedTokens: 512, maxNumSeqs: 4, cpuThreads: 1 } as const;
    const { runner, release } = await startPoolingThread(bert.path, options, { log: () => {} });
    const engine = new PoolingEngine({
      runner,
      tokenizer: fakeTokenizer,
      maxModelLen: 512,
      maxNumBatchedTokens: 512,
      maxNumSeqs: 4,
      release,
    });
    const [row] = await engine.pool([{ tokenIds: [101, 7, 102] }]);
    assert.equal(row!.length, runner.outputSize);
    assert.ok(runner.launchMs !== undefined && runner.launchMs >= 0, 'the thread reports its launch time');
    await engine.shutdown();
    // Set only once the thread's exit is seen.
    await assert.rejects(runner.run([{ tokenIds: [101, 102] }]), /the pooling runner thread has shut down/);
  });
});
