import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { IncrementalDetokenizer } from '../../src/engine/detokenizer.ts';
import { Engine, type OutputSink } from '../../src/engine/engine.ts';
import { GrammarService } from '../../src/grammar/grammar-service.ts';
import type { GrammarSpec } from '../../src/grammar/spec.ts';
import { loadGrammarVocabulary } from '../../src/grammar/vocabulary.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadModel } from '../../src/models/load.ts';
import { ModelRunner } from '../../src/runner/model-runner.ts';
import { runToEnd } from '../helpers/engine.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const fixture = modelFixture('tiny-llama');

/** A sink that records how its request ended. */
function outcome() {
  const seen = { tokens: 0, finish: '', error: null as Error | null };
  const sink: OutputSink = {
    push(out) {
      for (const o of out.outputs) {
        seen.tokens += o.tokenIds.length;
        if (o.finishReason) seen.finish = o.finishReason;
      }
    },
    end() {},
    fail(err) {
      seen.error = err;
    },
  };
  return { seen, sink };
}

/** An engine on the CPU with one grammar worker, stepped by hand. */
function setup() {
  const dir = fixture.path;
  const model = loadModel(dir, new CpuBackend({ threads: 1 }));
  const tokenizer = loadTokenizer(dir);
  const grammar = new GrammarService({
    vocabulary: () => loadGrammarVocabulary(dir),
    vocabSize: model.config.vocabSize,
    stopTokenIds: tokenizer.eosTokenIds,
    capacity: 8,
    workers: 1,
  });
  after(() => grammar.close());
  const engine = new Engine({
    runner: new ModelRunner(model, 64, 16),
    tokenizer,
    newTextStream: (promptIds) => new IncrementalDetokenizer(tokenizer, { promptIds }),
    eosTokenIds: tokenizer.eosTokenIds,
    maxModelLen: 256,
    numBlocks: 64,
    blockSize: 16,
    enablePrefixCaching: true,
    scheduler: { maxNumBatchedTokens: 64, maxNumSeqs: 8, policy: 'fcfs' },
    manual: true,
    grammar,
  });
  // The service's one worker thread (reached past its privates on purpose).
  const thread = () => (grammar as unknown as { workers: { thread: Worker }[] }).workers[0]!.thread;
  return { grammar, engine, thread };
}

/** A request under a 100-letter grammar and a plain one, both running after four steps. */
async function twoRunning(engine: Engine, grammar: GrammarService) {
  const letters: GrammarSpec = { type: 'regex', pattern: '[a-z]{100}' };
  const key = await grammar.compile(letters);
  const doomed = outcome();
  const plain = outcome();
  engine.submit(
    { prompt: [1, 5, 9], params: { temperature: 1, seed: 3, maxTokens: 100 }, grammar: letters },
    doomed.sink,
    key,
  );
  engine.submit({ prompt: [1, 7, 2], params: { maxTokens: 30, ignoreEos: true } }, plain.sink);
  for (let i = 0; i < 4; i++) engine.step();
  assert.ok(doomed.seen.tokens > 0 && doomed.seen.error === null);
  return { doomed, plain };
}

test('a grammar worker that dies fails only the requests whose matchers it held', { skip: fixture.skip }, async () => {
  const { grammar, engine, thread } = setup();
  const { doomed, plain } = await twoRunning(engine, grammar);

  // The thread dies as an out-of-memory abort would take it.
  await thread().terminate();
  runToEnd(engine);

  assert.match(String(doomed.seen.error), /a grammar worker stopped/);
  assert.equal(grammar.failedMatchers, 0, 'the failed matcher was released');
  assert.deepEqual(plain.seen, { tokens: 30, finish: 'length', error: null });
  // A later grammar starts a new worker and runs.
  const again = outcome();
  const code: GrammarSpec = { type: 'regex', pattern: '[A-Z]{3}' };
  engine.submit(
    { prompt: [1, 4], params: { temperature: 1, seed: 4, maxTokens: 10 }, grammar: code },
    again.sink,
    await grammar.compile(code),
  );
  runToEnd(engine);
  assert.deepEqual(again.seen, { tokens: again.seen.tokens, finish: 'stop', error: null });
  assert.equal(engine.stats().running, 0);
});

test('a worker that fails while the step loop waits on it fails its requests at once, through shared memory', {
  skip: fixture.skip,
}, async () => {
  const { grammar, engine, thread } = setup();
  const { doomed, plain } = await twoRunning(engine, grammar);
  const told = new Promise<void>((resolve) => thread().on('message', (m) => m.op === 'failed' && resolve()));
  // A request that throws in the worker (a grammar that cannot compile, opened past the service's checks).
  thread().postMessage({ op: 'open', slot: 7, key: 'broken', spec: { type: 'regex', pattern: '(' } });
  // Until the worker has failed, without yielding to the event loop: its 'failed' message stays queued, so only its
  // shared flag can tell the next step (reached past the service's privates on purpose).
  const { failedFlag } = (grammar as unknown as { workers: { failedFlag: Int32Array }[] }).workers[0]!;
  for (let i = 0; Atomics.load(failedFlag, 0) === 0; i++) {
    assert.ok(i < 100, 'the worker sets its failure flag');
    Atomics.wait(failedFlag, 0, 0, 100);
  }
  // The mask published before the failure still serves one step; the next one waits on the worker and sees the flag.
  for (let i = 0; i < 2 && grammar.failedMatchers === 0; i++) engine.step();
  assert.equal(grammar.failedMatchers, 1, 'a step waiting on the worker saw the failure, and drew nothing');
  // The worker's message, once the event loop runs, says why; the request fails with that at the next step.
  const late = setTimeout(() => assert.fail('the worker posted no failure message'), 10_000);
  await told;
  clearTimeout(late);
  await new Promise((resolve) => setImmediate(resolve));
  runToEnd(engine);

  assert.match(String(doomed.seen.error), /^Error: grammar worker: ./);
  assert.ok(doomed.seen.tokens < 100, `${doomed.seen.tokens} tokens drawn`);
  assert.deepEqual(plain.seen, { tokens: 30, finish: 'length', error: null });
  assert.equal(grammar.failedMatchers, 0, 'the failed matcher was released');
});
