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

test('a grammar worker that dies fails only the requests whose matchers it held', { skip: fixture.skip }, async () => {
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

  // The thread dies as an out-of-memory abort would take it (reached past the service's privates on purpose).
  const { workers } = grammar as unknown as { workers: { thread: Worker }[] };
  await workers[0]!.thread.terminate();
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
