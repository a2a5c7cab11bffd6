import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Engine, EngineConfig } from '../../src/engine/engine.ts';
import { Rng } from '../../src/engine/sequence.ts';
import type { SpeculativeConfig } from '../../src/engine/speculation.ts';
import type { SamplingParams } from '../../src/engine/types.ts';
import { assertAllBlocksFree, type Collected, fakeEngine, submit } from '../helpers/engine.ts';
import { FakeRunner, referenceLogits } from '../helpers/fake-model.ts';

const ngram: SpeculativeConfig = { method: 'ngram', numTokens: 4, ngram: { min: 1, max: 3 } };

/**
 * Mostly a function of the last token (a bonus on the token it "predicts"), so greedy text falls into cycles that
 * n-gram lookup predicts, but the whole context read back through the block table still moves the logits and now and
 * then the argmax: a wrong table or a stale slot changes the output.
 */
function cyclicLogits(context: readonly number[], vocab: number): Float32Array {
  const own = referenceLogits(context.slice(-1), vocab);
  let next = 0;
  for (let i = 1; i < vocab; i++) if (own[i]! > own[next]!) next = i;
  const out = referenceLogits(context, vocab);
  out[next]! += 7.5;
  return out;
}

function engineWith(
  speculative: SpeculativeConfig | undefined,
  over: Partial<EngineConfig> & { numBlocks?: number; blockSize?: number } = {},
  logitsOf = cyclicLogits,
): Engine {
  const numBlocks = over.numBlocks ?? 64;
  const blockSize = over.blockSize ?? 4;
  return fakeEngine({ runner: new FakeRunner(64, numBlocks, blockSize, logitsOf), speculative, ...over });
}

interface Job {
  prompt: number[];
  params: Partial<SamplingParams>;
  arriveAt: number;
}

function randomJobs(count: number, seed: number): Job[] {
  const rng = new Rng(seed, 0);
  const int = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1));
  return Array.from({ length: count }, () => ({
    prompt: Array.from({ length: int(1, 12) }, () => int(1, 63)),
    params: { temperature: 0, maxTokens: int(1, 40), ignoreEos: true },
    arriveAt: int(0, 20),
  }));
}

/**
 * Runs the jobs, each submitted at its arrival step, checking after every step that the block tables are consistent:
 * each running sequence holds exactly the blocks its computed tokens need (rejected drafts' blocks given back), and
 * every used block's reference count is the number of tables that hold it.
 */
function runJobs(engine: Engine, jobs: Job[]): Collected[] {
  const results: Collected[] = [];
  for (let step = 0; results.length < jobs.length || engine.stats().running + engine.stats().waiting > 0; step++) {
    jobs.forEach((j, i) => {
      if (j.arriveAt === step) results[i] = submit(engine, { prompt: j.prompt, params: j.params });
    });
    engine.step();
    assertTablesConsistent(engine);
    if (step > 10_000) throw new Error('engine did not finish');
  }
  return results;
}

function assertTablesConsistent(engine: Engine): void {
  const refs = new Map<number, number>();
  for (const r of engine.scheduler.running) {
    for (const s of r.seqs) {
      if (s.finished) continue;
      assert.equal(s.blockTable.length, engine.blocks.blocksFor(s.numComputed), `sequence ${s.id}'s block table`);
      for (const b of s.blockTable) refs.set(b, (refs.get(b) ?? 0) + 1);
    }
  }
  assert.equal(engine.blocks.numUsed, refs.size, 'blocks in use but in no table');
  for (const [b, n] of refs) assert.equal(engine.blocks.refCountOf(b), n, `block ${b}'s reference count`);
}

const ids = (rs: Collected[]) => rs.map((r) => r.tokenIds[0]);

test('greedy: speculative output equals one-token-per-step output, with drafts accepted and rejected', () => {
  for (const logitsOf of [cyclicLogits, referenceLogits]) {
    const jobs = randomJobs(24, 7);
    const plain = engineWith(undefined, {}, logitsOf);
    const expected = ids(runJobs(plain, jobs));
    const spec = engineWith(ngram, {}, logitsOf);
    assert.deepEqual(ids(runJobs(spec, jobs)), expected);
    const s = spec.stats();
    assert.ok(s.specDraftTokens > 0, 'nothing was proposed');
    if (logitsOf === cyclicLogits) {
      assert.ok(s.specAcceptedTokens > s.specDraftTokens / 2, `accepted ${s.specAcceptedTokens}/${s.specDraftTokens}`);
      assert.ok(s.steps < plain.stats().steps, 'speculation took no steps off');
    }
    assert.ok(s.specAcceptedTokens < s.specDraftTokens, 'no draft was ever rejected');
    assertAllBlocksFree(spec);
  }
});

test('preemption with speculation: the same output from a cache too small for every request', () => {
  const jobs = randomJobs(16, 11).map((j) => ({ ...j, arriveAt: 0 }));
  const plain = engineWith(undefined, { numBlocks: 24 });
  const expected = ids(runJobs(plain, jobs));
  const spec = engineWith(ngram, { numBlocks: 24 });
  assert.deepEqual(ids(runJobs(spec, jobs)), expected);
  assert.ok(spec.stats().preemptions > 0, 'nothing was preempted');
  assert.ok(spec.stats().specAcceptedTokens > 0);
  assertAllBlocksFree(spec);
});

test('under a full token budget speculation drops to none, and resumes when there is room', () => {
  const jobs = Array.from({ length: 4 }, (_, i) => ({
    prompt: [i + 1, i + 2],
    params: { temperature: 0, maxTokens: 8 + 6 * i, ignoreEos: true },
    arriveAt: 0,
  }));
  const scheduler = { maxNumBatchedTokens: 4, maxNumSeqs: 16, policy: 'fcfs' as const };
  const runner = new FakeRunner(64, 64, 4, cyclicLogits);
  const steps: number[][] = [];
  const execute = runner.execute.bind(runner);
  runner.execute = (chunks, copies) => {
    steps.push(chunks.map((c) => c.tokenIds.length));
    return execute(chunks, copies);
  };
  const spec = engineWith(ngram, { runner, scheduler });
  assert.deepEqual(ids(runJobs(spec, jobs)), ids(runJobs(engineWith(undefined, { scheduler }), jobs)));
  // Four decodes fill the budget of 4: no draft rides along; once requests finish, drafts do.
  const fourDecodes = steps.filter((s) => s.length === 4);
  assert.ok(fourDecodes.length > 0);
  for (const s of fourDecodes) assert.deepEqual(s, [1, 1, 1, 1]);
  assert.ok(
    steps.slice(4).some((s) => s.length < 4 && s.some((n) => n > 1)),
    'no draft once there was room',
  );
  assert.ok(spec.stats().specAcceptedTokens > 0);
  assertAllBlocksFree(spec);
});

test('max_tokens, a stop id and a stop string inside an accepted run end the sequence at that token', () => {
  const prompt = [5, 9, 14];
  const long = ids(
    runJobs(engineWith(undefined), [
      { prompt, params: { temperature: 0, maxTokens: 40, ignoreEos: true }, arriveAt: 0 },
    ]),
  )[0]!;
  const cases: Partial<SamplingParams>[] = [
    { maxTokens: 17 },
    { maxTokens: 40, stopTokenIds: [long.find((t, i) => i >= 12 && long.indexOf(t) === i)!] },
    {
      maxTokens: 40,
      stop: [
        long
          .slice(14, 16)
          .map((t) => String.fromCharCode(96 + t))
          .join(''),
      ],
    },
  ];
  for (const extra of cases) {
    const params = { temperature: 0, ignoreEos: true, ...extra };
    const job = [{ prompt, params, arriveAt: 0 }];
    const plain = runJobs(engineWith(undefined), job)[0]!;
    const engine = engineWith(ngram);
    const spec = runJobs(engine, job)[0]!;
    assert.deepEqual(spec.tokenIds, plain.tokenIds, JSON.stringify(extra));
    assert.equal(spec.text[0], plain.text[0]);
    assert.deepEqual(spec.finishReasons, plain.finishReasons);
    assert.ok(engine.stats().specAcceptedTokens > 0);
    assertAllBlocksFree(engine);
  }
});

test('a draft model: greedy output equals plain decoding, whether the draft is the target itself or another model', () => {
  const jobs = randomJobs(16, 5);
  const expected = ids(runJobs(engineWith(undefined), jobs));
  for (const draftLogits of [cyclicLogits, referenceLogits]) {
    const draft = { runner: new FakeRunner(64, 32, 4, draftLogits), numBlocks: 32, blockSize: 4, maxModelLen: 256 };
    const engine = engineWith({ method: 'draft', numTokens: 3, draft });
    assert.deepEqual(ids(runJobs(engine, jobs)), expected);
    const s = engine.stats();
    if (draftLogits === cyclicLogits)
      assert.equal(s.specAcceptedTokens, s.specDraftTokens, 'the target rejected itself');
    else
      assert.ok(s.specAcceptedTokens < s.specDraftTokens / 4, `accepted ${s.specAcceptedTokens}/${s.specDraftTokens}`);
    assert.ok(s.specDraftTokens > 100);
    assertAllBlocksFree(engine);
  }
});
