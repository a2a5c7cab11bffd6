import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { PoolingEngine } from '../../src/engine/pooling-engine.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import type { PoolingTask } from '../../src/models/pooling-model.ts';
import type { PoolingInput } from '../../src/runner/pooling-batch.ts';
import { PoolingRunner, type StepPooler } from '../../src/runner/pooling-runner.ts';
import { UserError } from '../../src/util/errors.ts';
import { fakeTokenizer } from '../helpers/fake-model.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { maxAbsDiff } from '../helpers/paged-session.ts';

/** A pooler whose row for a sequence is [its length, its first id]; it records every step's sequence lengths. */
class RecordingPooler implements StepPooler {
  readonly outputSize = 2;
  readonly normalized = false;
  readonly vocabSize = 100;
  readonly computesApart: boolean = false;
  readonly steps: number[][] = [];
  constructor(readonly task: PoolingTask = 'embed') {}
  run(inputs: readonly PoolingInput[]): Promise<Float32Array> {
    this.steps.push(inputs.map((s) => s.tokenIds.length));
    return Promise.resolve(Float32Array.from(inputs.flatMap((s) => [s.tokenIds.length, s.tokenIds[0]!])));
  }
}

/**
 * A device that computes apart from the thread (or not): each step's rows come when the test finishes it; the steps'
 * lengths are recorded with which requests had their answers by the time the step started.
 */
class HeldPooler extends RecordingPooler {
  readonly held: (() => void)[] = [];
  readonly answeredAtStart: string[][] = [];
  readonly answered: string[] = [];
  constructor(override readonly computesApart: boolean) {
    super();
  }
  override run(inputs: readonly PoolingInput[]): Promise<Float32Array> {
    this.answeredAtStart.push([...this.answered]);
    const rows = super.run(inputs);
    return new Promise((resolve) => this.held.push(() => resolve(rows)));
  }
  /** Waits until `n` steps have started, then lets the step `i` finish. */
  async finish(i: number): Promise<void> {
    while (this.held.length <= i) await new Promise((r) => setImmediate(r));
    this.held[i]!();
  }
}

/** Its first step throws (a device error); later steps run. */
class FailsFirstStep extends RecordingPooler {
  private failed = false;
  override run(inputs: readonly PoolingInput[]): Promise<Float32Array> {
    if (this.failed) return super.run(inputs);
    this.failed = true;
    // As the real (async) runner fails: a rejected promise, not a throw.
    return Promise.reject(new Error('device lost'));
  }
}

const seq = (n: number, first = 1): PoolingInput => ({ tokenIds: [first, ...new Array(n - 1).fill(2)] });
const engineOf = (runner: StepPooler, budget = 10, seqs = 3) =>
  new PoolingEngine({
    runner,
    tokenizer: fakeTokenizer,
    maxModelLen: 8,
    maxNumBatchedTokens: budget,
    maxNumSeqs: seqs,
    manual: true,
  });

describe('pooling engine', () => {
  test('sequences of several requests share steps, first come first served, within the token budget and the cap', async () => {
    const pooler = new RecordingPooler();
    const engine = engineOf(pooler);
    const a = engine.pool([seq(4, 10), seq(5, 11)]);
    const b = engine.pool([seq(1, 12), seq(8, 13), seq(1, 14), seq(1, 15), seq(1, 16)]);
    while (await engine.step());
    // 4 + 5 + 1 fill the 10-token budget and the cap of 3; 8 + 1 + 1 the next; the last 1 runs alone.
    assert.deepEqual(pooler.steps, [[4, 5, 1], [8, 1, 1], [1]]);
    assert.deepEqual(
      (await a).map((r) => [...r]),
      [
        [4, 10],
        [5, 11],
      ],
    );
    assert.deepEqual(
      (await b).map((r) => r[1]),
      [12, 13, 14, 15, 16],
    );
    assert.equal(engine.stats().steps, 3);
    assert.equal(engine.stats().promptTokens, 21);
  });

  test("a reranker's logit comes back through a sigmoid", async () => {
    const engine = engineOf(new RecordingPooler('score'));
    const rows = engine.pool([seq(2, 0)]);
    await engine.step();
    const [row] = await rows;
    assert.ok(Math.abs(row![0]! - 1 / (1 + Math.exp(-2))) < 1e-7);
    assert.equal(row![1], 0.5);
  });

  test('refusals name the input: empty, too long, ids outside the vocabulary; nothing is queued', () => {
    const engine = engineOf(new RecordingPooler());
    const refuse = (inputs: PoolingInput[], pattern: RegExp) =>
      assert.throws(
        () => engine.pool(inputs),
        (e: unknown) => e instanceof UserError && pattern.test(e.message),
      );
    refuse([seq(2), { tokenIds: [] }], /input 1 is empty/);
    refuse([seq(9)], /input 0 is 9 tokens, more than this model's maximum of 8/);
    refuse([seq(2), { tokenIds: [1, 100] }], /input 1: token id 100 is outside the vocabulary \(0\.\.99\)/);
    refuse([{ tokenIds: [-1] }], /token id -1/);
    assert.equal(engine.stats().waiting, 0);
  });

  test("an abort drops the request's queued sequences and rejects it; others still run", async () => {
    const pooler = new RecordingPooler();
    const engine = engineOf(pooler, 10, 1);
    const ctl = new AbortController();
    const gone = engine.pool([seq(2), seq(3)], ctl.signal);
    const kept = engine.pool([seq(4)]);
    await engine.step();
    ctl.abort(new Error('client went away'));
    await assert.rejects(gone, /client went away/);
    while (await engine.step());
    assert.deepEqual(pooler.steps, [[2], [4]]);
    assert.equal((await kept)[0]![0], 4);
  });

  for (const computesApart of [true, false]) {
    test(`requests arriving while a step computes run in the next step; answers are written ${computesApart ? 'while the device runs it (CUDA)' : 'before it runs (CPU)'}`, async () => {
      const pooler = new HeldPooler(computesApart);
      const engine = new PoolingEngine({
        runner: pooler,
        tokenizer: fakeTokenizer,
        maxModelLen: 8,
        maxNumBatchedTokens: 100,
        maxNumSeqs: 100,
      });
      const track = (name: string, rows: Promise<Float32Array[]>) =>
        rows.then((r) => {
          pooler.answered.push(name);
          return r.map((x) => x[0]);
        });
      const a = track('a', engine.pool([seq(2), seq(3)]));
      while (pooler.steps.length === 0) await new Promise((r) => setImmediate(r));
      const b = track('b', engine.pool([seq(4)]));
      const c = track('c', engine.pool([seq(5), seq(6)]));
      await pooler.finish(0);
      await pooler.finish(1);
      assert.deepEqual(await Promise.all([a, b, c]), [[2, 3], [4], [5, 6]]);
      assert.deepEqual(pooler.steps, [
        [2, 3],
        [4, 5, 6],
      ]);
      assert.deepEqual(pooler.answeredAtStart, [[], computesApart ? [] : ['a']]);
      assert.equal(engine.stats().steps, 2);
      await engine.shutdown();
    });
  }

  test('a failed step rejects its requests; the next step runs', async () => {
    const pooler = new FailsFirstStep();
    const engine = engineOf(pooler, 10, 1);
    const failed = engine.pool([seq(2)]);
    const next = engine.pool([seq(3)]);
    while (await engine.step());
    await assert.rejects(failed, /device lost/);
    assert.equal((await next)[0]![0], 3);
    assert.equal(engine.stats().steps, 1);
  });

  test('a budget below the longest input is refused: inputs are never split', () => {
    assert.throws(
      () => engineOf(new RecordingPooler(), 7),
      /max num batched tokens 7 is below the longest input \(8\)/,
    );
  });

  test('generate() on a pooling engine is a one-line refusal', () => {
    assert.throws(() => engineOf(new RecordingPooler()).generate(), /an embedding model: it does not generate text/);
  });
});

const fixture = modelFixture('tiny-bert');
test('concurrent requests on tiny-bert, batched by the running loop, give the golden embeddings', {
  skip: fixture.skip,
}, async () => {
  const g = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')) as {
    input_ids: number[][];
    embeddings: number[][];
  };
  const { model } = loadPoolingModel(fixture.path, new CpuBackend({ threads: 1 }));
  const runner = new PoolingRunner(model);
  const steps: number[] = [];
  const counting: StepPooler = {
    ...runner,
    task: runner.task,
    outputSize: runner.outputSize,
    normalized: true,
    vocabSize: runner.vocabSize,
    computesApart: runner.computesApart,
    run: (i) => {
      steps.push(i.length);
      return runner.run(i);
    },
  };
  const engine = new PoolingEngine({
    runner: counting,
    tokenizer: fakeTokenizer,
    maxModelLen: 512,
    maxNumBatchedTokens: 512,
    maxNumSeqs: 64,
  });
  const rows = await Promise.all(g.input_ids.map((ids) => engine.pool([{ tokenIds: ids }])));
  for (const [i, [row]] of rows.entries()) assert.ok(maxAbsDiff(row!, g.embeddings[i]!) < 1e-4, `sentence ${i}`);
  assert.ok(steps.length < g.input_ids.length, `requests shared steps: ${steps}`);
  await engine.shutdown();
});
