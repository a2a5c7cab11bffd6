import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { PoolingEngine } from '../../src/engine/pooling-engine.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import type { PoolingInput } from '../../src/runner/pooling-batch.ts';
import { PoolingRunner, type StepPooler } from '../../src/runner/pooling-runner.ts';
import { fakeTokenizer } from '../helpers/fake-model.ts';
import { modelFixture } from '../helpers/fixtures.ts';

interface HandStep {
  firstIds: number[];
  settled: boolean;
  finish(): void;
  fail(err: Error): void;
}

/**
 * A device that computes apart from the thread, whose steps end only when the test says so (in any order): a
 * sequence's row is [its length, its first id]. Records every step and the most steps ever unfinished at once.
 */
class HandPooler implements StepPooler {
  readonly task = 'embed' as const;
  readonly outputSize = 2;
  readonly normalized = false;
  readonly vocabSize = 100;
  readonly steps: HandStep[] = [];
  mostInFlight = 0;
  constructor(readonly computesApart = true) {}

  run(inputs: readonly PoolingInput[]): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      const step: HandStep = {
        firstIds: inputs.map((s) => s.tokenIds[0]!),
        settled: false,
        finish: () => {
          step.settled = true;
          resolve(Float32Array.from(inputs.flatMap((s) => [s.tokenIds.length, s.tokenIds[0]!])));
        },
        fail: (err) => {
          step.settled = true;
          reject(err);
        },
      };
      this.steps.push(step);
      this.mostInFlight = Math.max(this.mostInFlight, this.steps.filter((s) => !s.settled).length);
    });
  }

  get launched(): number[][] {
    return this.steps.map((s) => s.firstIds);
  }
}

const turns = async (n = 10) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
/** Tracks a promise: its value (or error) once settled. */
function watch<T>(p: Promise<T>) {
  const w: { value?: T; error?: Error } = {};
  p.then(
    (v) => (w.value = v),
    (e: Error) => (w.error = e),
  );
  return w;
}
const one = (first: number, len = 2): PoolingInput[] => [{ tokenIds: [first, ...new Array(len - 1).fill(3)] }];
const firstIdOf = (rows: Float32Array[] | undefined) => rows?.map((r) => r[1]);
const engineOf = (runner: StepPooler, maxNumSeqs = 1) =>
  new PoolingEngine({ runner, tokenizer: fakeTokenizer, maxModelLen: 8, maxNumBatchedTokens: 100, maxNumSeqs });

describe('pooling engine: steps in flight', () => {
  test('two steps in flight, never three; answers in launch order, each request its own rows', async () => {
    const pooler = new HandPooler();
    const engine = engineOf(pooler, 2);
    const reqs = [1, 2, 3, 4, 5, 6].map((id) => watch(engine.pool(one(id, id))));
    await turns();
    assert.deepEqual(pooler.launched, [
      [1, 2],
      [3, 4],
    ]);
    assert.equal(engine.stats().waiting, 2);
    // The second step ends first (a device that reorders): its answers wait for the first step's, nothing launches.
    pooler.steps[1]!.finish();
    await turns();
    assert.ok(reqs.every((r) => !r.value && !r.error));
    assert.equal(pooler.steps.length, 2);
    pooler.steps[0]!.finish();
    await turns();
    assert.deepEqual(
      reqs.slice(0, 4).map((r) => [...r.value![0]!]),
      [
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 4],
      ],
    );
    assert.deepEqual(pooler.launched.at(-1), [5, 6]);
    pooler.steps[2]!.finish();
    await turns();
    assert.deepEqual(
      reqs.map((r) => firstIdOf(r.value)),
      [[1], [2], [3], [4], [5], [6]],
    );
    assert.equal(pooler.mostInFlight, 2);
    assert.equal(engine.stats().steps, 3);
    await engine.shutdown();
  });

  test('a request arriving while a step computes is launched beside it on a device computing apart, after it on the CPU', async () => {
    for (const computesApart of [true, false]) {
      const pooler = new HandPooler(computesApart);
      const engine = engineOf(pooler, 8);
      const a = watch(engine.pool(one(1)));
      await turns();
      const b = watch(engine.pool(one(2)));
      await turns();
      assert.deepEqual(pooler.launched, computesApart ? [[1], [2]] : [[1]], `computesApart ${computesApart}`);
      pooler.steps[0]!.finish();
      await turns();
      assert.deepEqual(firstIdOf(a.value), [1]);
      assert.equal(pooler.steps.length, 2);
      pooler.steps[1]!.finish();
      await turns();
      assert.deepEqual(firstIdOf(b.value), [2]);
      assert.equal(pooler.mostInFlight, computesApart ? 2 : 1);
      await engine.shutdown();
    }
  });

  test('once a step has finished, a request arriving beside a step in flight waits until that step is about to end, unless the queue fills a step', async () => {
    const pooler = new HandPooler();
    const engine = engineOf(pooler, 2);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const a = watch(engine.pool(one(1, 8)));
    await turns();
    await sleep(200);
    pooler.steps[0]!.finish(); // about 25 ms a token
    await turns();
    assert.deepEqual(firstIdOf(a.value), [1]);
    watch(engine.pool(one(2, 8))); // launched at once: nothing in flight; due to end about 200 ms later
    await turns();
    const c = watch(engine.pool(one(3, 8)));
    await turns();
    assert.deepEqual(pooler.launched, [[1], [2]], 'the lone request waits to join the next step');
    watch(engine.pool(one(4, 8)));
    await turns();
    assert.deepEqual(pooler.launched, [[1], [2], [3, 4]], 'two requests fill a step of two: launched at once');
    pooler.steps[1]!.finish();
    pooler.steps[2]!.finish();
    await turns();
    assert.deepEqual(firstIdOf(c.value), [3]);
    const e = watch(engine.pool(one(5, 8)));
    await turns();
    const f = watch(engine.pool(one(6, 8)));
    await turns();
    assert.equal(pooler.steps.length, 4, 'the lone request waits');
    // Due about 200 ms after its step's launch by the pacer's estimate; a loaded machine stretches both the estimate
    // (timed by the same clock) and the timer, so wait for the launch (up to 5 s) rather than a fixed time.
    for (const end = Date.now() + 5000; pooler.launched.length < 5 && Date.now() < end; ) await sleep(10);
    assert.deepEqual(pooler.launched.at(-1), [6], 'launched when the step in flight was due to end, before it did');
    assert.equal(pooler.steps[3]!.settled, false);
    pooler.steps[3]!.finish();
    pooler.steps[4]!.finish();
    await turns();
    assert.deepEqual([firstIdOf(e.value), firstIdOf(f.value)], [[5], [6]]);
    await engine.shutdown();
  });

  test('a failed step fails only its own requests; the step beside it and later ones run', async () => {
    const pooler = new HandPooler();
    const engine = engineOf(pooler);
    const [a, b, c] = [1, 2, 3].map((id) => watch(engine.pool(one(id))));
    await turns();
    pooler.steps[0]!.fail(new Error('device lost'));
    await turns();
    assert.match(a!.error!.message, /device lost/);
    assert.equal(b!.error, undefined);
    assert.deepEqual(pooler.launched, [[1], [2], [3]]);
    pooler.steps[1]!.finish();
    pooler.steps[2]!.finish();
    await turns();
    assert.deepEqual([firstIdOf(b!.value), firstIdOf(c!.value)], [[2], [3]]);
    const d = watch(engine.pool(one(4)));
    await turns();
    pooler.steps[3]!.finish();
    await turns();
    assert.deepEqual(firstIdOf(d.value), [4]);
    assert.equal(engine.stats().steps, 3);
    await engine.shutdown();
  });

  test('cancelling a request whose step is in flight rejects it at once; its step-mates still get their rows', async () => {
    const pooler = new HandPooler();
    const engine = engineOf(pooler, 2);
    const ctl = new AbortController();
    const queuedCtl = new AbortController();
    const gone = watch(engine.pool(one(1), ctl.signal));
    const mate = watch(engine.pool(one(2)));
    const second = watch(engine.pool(one(3)));
    const queued = watch(engine.pool(one(5), queuedCtl.signal));
    await turns();
    assert.deepEqual(pooler.launched, [
      [1, 2],
      [3, 5],
    ]);
    // Requests behind two steps in flight wait in the queue: the one cancelled there never runs.
    const late = watch(engine.pool(one(6), queuedCtl.signal));
    await turns();
    queuedCtl.abort(new Error('client went away'));
    ctl.abort(new Error('client went away'));
    await turns();
    assert.match(gone.error!.message, /client went away/);
    assert.match(late.error!.message, /client went away/);
    assert.equal(mate.value, undefined);
    pooler.steps[0]!.finish();
    pooler.steps[1]!.finish();
    await turns();
    assert.deepEqual(firstIdOf(mate.value), [2]);
    assert.deepEqual(firstIdOf(second.value), [3]);
    assert.match(queued.error!.message, /client went away/, 'its step ran, but it had gone');
    assert.deepEqual(pooler.launched, [
      [1, 2],
      [3, 5],
    ]);
    await engine.shutdown();
  });

  for (const force of [true, false]) {
    test(`shutdown${force ? ' (forced)' : ''} while steps are in flight waits for them; their requests get their rows`, async () => {
      const pooler = new HandPooler();
      const engine = engineOf(pooler);
      const [a, b, c] = [1, 2, 3].map((id) => watch(engine.pool(one(id))));
      await turns();
      const down = watch(engine.shutdown(force));
      await turns();
      await assert.rejects(engine.pool(one(4)), /shutting down/);
      assert.equal(force, c!.error !== undefined, 'a forced shutdown rejects the queued request');
      pooler.steps[0]!.finish();
      await turns();
      assert.equal(down.value === undefined && !down.error, true, 'shutdown still waits for the second step');
      pooler.steps[1]!.finish();
      await turns();
      if (!force) pooler.steps[2]!.finish();
      await turns();
      assert.deepEqual([firstIdOf(a!.value), firstIdOf(b!.value)], [[1], [2]]);
      assert.deepEqual(firstIdOf(c!.value), force ? undefined : [3]);
      assert.equal(pooler.steps.length, force ? 2 : 3);
      assert.equal(down.error, undefined);
      await engine.shutdown();
    });
  }
});

/** The CPU backend with its rows held back until the test lets them go, as a device computing apart would. */
class HeldRowsCpu extends CpuBackend {
  readonly held: (() => void)[] = [];
  override toHostAsync(t: Tensor): Promise<Float32Array> {
    const rows = this.toHost(t);
    return new Promise((resolve) => this.held.push(() => resolve(rows)));
  }
}

const fixture = modelFixture('tiny-bert');
test('tiny-bert with two steps in flight (rows held by hand): the rows of one-at-a-time steps, to the right requests', {
  skip: fixture.skip,
}, async () => {
  const g = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')) as { input_ids: number[][] };
  const backend = new HeldRowsCpu({ threads: 1 });
  const runner = new PoolingRunner(loadPoolingModel(fixture.path, backend).model);
  assert.equal(runner.computesApart, false);
  const direct = new PoolingRunner(loadPoolingModel(fixture.path, new CpuBackend({ threads: 1 })).model);
  const apart: StepPooler = {
    task: runner.task,
    outputSize: runner.outputSize,
    normalized: runner.normalized,
    vocabSize: runner.vocabSize,
    computesApart: true,
    run: (inputs) => runner.run(inputs),
  };
  const engine = new PoolingEngine({
    runner: apart,
    tokenizer: fakeTokenizer,
    maxModelLen: 512,
    maxNumBatchedTokens: 512,
    maxNumSeqs: 2,
  });
  const asked = g.input_ids.map((ids) => engine.pool([{ tokenIds: ids }]));
  let released = 0;
  let most = 0;
  while (released < Math.ceil(g.input_ids.length / 2)) {
    await turns();
    most = Math.max(most, backend.held.length - released);
    backend.held[released++]?.();
  }
  assert.equal(most, 2, 'two steps in flight, never three');
  const rows = await Promise.all(asked);
  for (let i = 0; i < g.input_ids.length; i += 2) {
    const want = await direct.run(g.input_ids.slice(i, i + 2).map((tokenIds) => ({ tokenIds })));
    for (let j = i; j < Math.min(i + 2, g.input_ids.length); j++) {
      const w = want.subarray((j - i) * runner.outputSize, (j - i + 1) * runner.outputSize);
      assert.deepEqual(rows[j]![0], w, `input ${j}`);
    }
  }
  await engine.shutdown();
});
