import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SampledIds, SamplingRow } from '../../src/backend/backend.ts';
import { PENDING_TOKEN } from '../../src/engine/async-scheduling.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { Rng } from '../../src/engine/sequence.ts';
import type { SamplingParams } from '../../src/engine/types.ts';
import type { StepLogits } from '../../src/runner/model-runner.ts';
import type { ScheduledChunk } from '../../src/runner/step-batch.ts';
import { assertAllBlocksFree, fakeEngine, runToEnd, submit } from '../helpers/engine.ts';
import { FakeRunner } from '../helpers/fake-model.ts';
import { referenceSample } from '../helpers/sampling-reference.ts';

/** Ids the fake "device" drew, readable once; the runner checks who takes them and when. */
class FakeSampledIds implements SampledIds {
  collected = false;
  constructor(readonly device: Int32Array) {}
  get count(): number {
    return this.device.length;
  }
  collect(): Int32Array {
    assert.ok(!this.collected, 'ids collected twice');
    this.collected = true;
    return this.device.slice();
  }
}

/**
 * The fake model behind a backend that samples on its "device" (the CPU twin of kernels/sampling.cu) and can leave
 * the ids there: a step given `inputs` takes its input tokens from them, as the CUDA backend copies them on the
 * device, so a wrong row, a placeholder taken for a token or a stale id changes the context the model sees.
 */
class AsyncSamplingRunner extends FakeRunner {
  followUps = 0;
  launches = 0;
  pending: FakeSampledIds[] = [];
  maxPending = 0;

  override execute(
    chunks: readonly ScheduledChunk[],
    copies: readonly [number, number][],
    inputs?: SampledIds,
  ): StepLogits {
    let own = chunks;
    if (inputs) {
      assert.ok(inputs instanceof FakeSampledIds);
      assert.equal(inputs.count, chunks.length, 'one sampled id per chunk');
      own = chunks.map((c, i) => {
        assert.deepEqual(c.tokenIds, [PENDING_TOKEN], 'a follow-up chunk is one placeholder');
        return { ...c, tokenIds: [inputs.device[i]!] };
      });
      this.followUps++;
    }
    this.launches++;
    const logits = super.execute(own, copies);
    const draw = (rows: readonly SamplingRow[]) =>
      Int32Array.from(rows, (r) => referenceSample(logits.toHost([r.logitRow!]), r));
    return {
      toHost: (rows) => logits.toHost(rows),
      sample: draw,
      sampleAsync: (rows) => {
        const ids = new FakeSampledIds(draw(rows));
        this.pending = this.pending.filter((p) => !p.collected);
        this.pending.push(ids);
        this.maxPending = Math.max(this.maxPending, this.pending.length);
        return ids;
      },
    };
  }
}

function engines(numBlocks = 64) {
  const asyncRunner = new AsyncSamplingRunner(64, numBlocks, 4);
  return {
    sync: fakeEngine({ runner: new AsyncSamplingRunner(64, numBlocks, 4), asyncScheduling: false, numBlocks }),
    async: fakeEngine({ runner: asyncRunner, numBlocks }),
    runner: asyncRunner,
  };
}

function prompts(n: number, seed: number): number[][] {
  const rng = new Rng(seed, 0);
  return Array.from({ length: n }, () =>
    Array.from({ length: 3 + Math.floor(rng.next() * 20) }, () => 1 + Math.floor(rng.next() * 63)),
  );
}

function run(engine: Engine, ps: number[][], params: Partial<SamplingParams>) {
  const results = ps.map((prompt, i) => submit(engine, { prompt, params: { seed: 5 + i, ...params } }));
  runToEnd(engine);
  assertAllBlocksFree(engine);
  return results.map((r) => ({ ids: r.tokenIds, text: r.text, finish: r.finishReasons }));
}

test('async scheduling gives the tokens, texts and finish reasons of stepping synchronously', () => {
  const cases: Partial<SamplingParams>[] = [
    { temperature: 0, maxTokens: 12 },
    { temperature: 0, maxTokens: 40, ignoreEos: true },
    { temperature: 0.9, topP: 0.8, maxTokens: 30, ignoreEos: true },
    { temperature: 1, maxTokens: 25 },
    { temperature: 0, maxTokens: 12, logitBias: { 7: 3, 9: -100 } },
    { temperature: 0.7, maxTokens: 16, minTokens: 6, stopTokenIds: [5, 6] },
    { temperature: 0, maxTokens: 20, stop: ['c'] },
    { temperature: 0, maxTokens: 1 },
  ];
  for (const params of cases) {
    const { sync, async, runner } = engines();
    const ps = prompts(6, 3);
    assert.deepEqual(run(async, ps, params), run(sync, ps, params), JSON.stringify(params));
    assert.ok(runner.maxPending <= 2, 'at most the step in flight and its follow-up');
    if ((params.maxTokens ?? 0) > 2) assert.ok(runner.followUps > 0, `${JSON.stringify(params)}: no step followed`);
  }
});

test("one long request launches every decode step before the previous step's id is read", () => {
  const { sync, async, runner } = engines();
  const [prompt] = prompts(1, 11);
  const params = { temperature: 0, maxTokens: 50, ignoreEos: true };
  assert.deepEqual(run(async, [prompt!], params), run(sync, [prompt!], params));
  // The prefill step, then 49 decode steps, each launched while the step before it ran; none past max_tokens.
  assert.equal(runner.launches, 50);
  assert.equal(runner.followUps, 49);
  // Steps by the tokens they computed, follow-ups counted as the synchronous steps are.
  const bySize = (engine: Engine) => [...engine.stats().stepTokens].sort(([a], [b]) => a - b);
  assert.deepEqual(bySize(async), [
    [1, 49],
    [prompt!.length, 1],
  ]);
  assert.deepEqual(bySize(sync), bySize(async));
});

test('requests that arrive, end and are aborted mid-stream drain the pipeline and lose nothing', () => {
  const { sync, async } = engines();
  const ps = prompts(8, 17);
  const params = { temperature: 0.8, maxTokens: 24 };
  const drive = (engine: Engine, abort: boolean) => {
    const early = ps.slice(0, 3).map((prompt, i) => submit(engine, { prompt, params: { ...params, seed: i } }));
    for (let i = 0; i < 7; i++) engine.step();
    const late = ps.slice(3).map((prompt, i) => submit(engine, { prompt, params: { ...params, seed: 10 + i } }));
    for (let i = 0; i < 5; i++) engine.step();
    if (abort) engine.abort('req-4');
    runToEnd(engine);
    assertAllBlocksFree(engine);
    return [...early, ...late].map((r) => ({ ids: r.tokenIds[0] ?? [], finish: r.finishReasons[0], done: r.done }));
  };
  const expected = drive(sync, false);
  const actual = drive(async, true);
  // Seeded draws do not depend on the batch, so only the aborted request differs: it stops short.
  const aborted = actual.splice(4, 1)[0]!;
  assert.deepEqual(
    actual,
    expected.filter((_, i) => i !== 4),
  );
  assert.equal(aborted.finish, 'abort');
  assert.ok(aborted.done);
  assert.deepEqual(aborted.ids, expected[4]!.ids.slice(0, aborted.ids.length));
  assert.ok(aborted.ids.length < expected[4]!.ids.length);
});

test('blocks that fill during async steps are registered with the real token ids (prefix caching)', () => {
  const { sync, async } = engines();
  const [prompt] = prompts(1, 23);
  const params = { temperature: 0, maxTokens: 21, ignoreEos: true };
  const hits = (engine: Engine) => {
    const [first] = run(engine, [prompt!], params);
    const before = engine.stats().prefixCacheHits;
    // The prompt and its completion as the next prompt: every full block of it is in the cache.
    const [again] = run(engine, [[...prompt!, ...first!.ids[0]!]], { ...params, maxTokens: 6 });
    return { hits: engine.stats().prefixCacheHits - before, again };
  };
  const a = hits(async);
  assert.deepEqual(a, hits(sync));
  assert.ok(a.hits > 0, 'the completion was found in the prefix cache');
});

test('a cache too small for every sequence to grow preempts as stepping synchronously does', () => {
  const { sync, async, runner } = engines(14);
  const ps = prompts(4, 31);
  const params = { temperature: 0, maxTokens: 24, ignoreEos: true };
  assert.deepEqual(run(async, ps, params), run(sync, ps, params));
  assert.equal(async.stats().preemptions, sync.stats().preemptions);
  assert.ok(sync.stats().preemptions > 0, 'the case preempts');
  assert.ok(runner.followUps > 0);
});

test('penalties, logprobs and n > 1 keep stepping synchronously', () => {
  const cases: Partial<SamplingParams>[] = [
    { temperature: 0, maxTokens: 10, repetitionPenalty: 1.5 },
    { temperature: 0, maxTokens: 10, logprobs: 1 },
    { temperature: 0.8, maxTokens: 10, n: 2, bestOf: 2 },
  ];
  for (const params of cases) {
    const { sync, async, runner } = engines();
    const ps = prompts(3, 41);
    assert.deepEqual(run(async, ps, params), run(sync, ps, params), JSON.stringify(params));
    assert.equal(runner.followUps, 0, JSON.stringify(params));
  }
});
