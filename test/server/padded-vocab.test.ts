import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Engine } from '../../src/engine/engine.ts';
import type { ModelSource } from '../../src/server/models.ts';
import { FakeRunner, fakeTextStream, fakeTokenizer } from '../helpers/fake-model.ts';
import { FakeSource } from './fake-engine.ts';
import { post, startTestServer, type TestServer } from './harness.ts';

// Qwen2.5's shape in small: the embedding has more rows than the tokenizer has tokens.
const EMBEDDING_ROWS = 64;
const TOKENIZER_VOCAB = 40;
const BETWEEN = 50;

/** A real engine over the fake model, served with a tokenizer smaller than the model's vocabulary. */
const padded: ModelSource = {
  inspect: (entry) => new FakeSource().inspect(entry),
  async load() {
    const tokenizer = { ...fakeTokenizer, vocabSize: TOKENIZER_VOCAB };
    const engine = new Engine({
      runner: new FakeRunner(EMBEDDING_ROWS, 64, 4),
      tokenizer,
      newTextStream: fakeTextStream,
      eosTokenIds: [0],
      maxModelLen: 128,
      numBlocks: 64,
      blockSize: 4,
      enablePrefixCaching: true,
      scheduler: { maxNumBatchedTokens: 64, maxNumSeqs: 8, policy: 'fcfs' },
    });
    return {
      engine,
      tokenizer,
      chatTemplate: null,
      contextLength: 128,
      maxRunning: 8,
      backend: 'cpu',
      kvCacheBytes: 0,
    };
  },
};

let server: TestServer;
before(async () => {
  server = await startTestServer(padded, [{ name: 'padded', path: '/nonexistent', ref: 'padded' }]);
});
after(() => server.close());

const complete = (body: Record<string, unknown>) =>
  post(`${server.url}/v1/completions`, { model: 'padded', max_tokens: 2, ignore_eos: true, ...body });

function assertRefused(r: { status: number; json: Record<string, unknown> }, param: string) {
  assert.equal(r.status, 400);
  const e = r.json.error as { message: string; param: string };
  assert.equal(e.param, param);
  assert.match(e.message, new RegExp(`${EMBEDDING_ROWS}.*outside the vocabulary \\(0\\.\\.${EMBEDDING_ROWS - 1}\\)`));
}

test('ids past the tokenizer but within the embedding rows are accepted; one past the rows is refused', async () => {
  assert.equal((await complete({ prompt: [1, 2, BETWEEN] })).status, 200);
  assertRefused(await complete({ prompt: [1, 2, EMBEDDING_ROWS] }), 'prompt');

  assert.equal((await complete({ prompt: 'abc', logit_bias: { [BETWEEN]: 5 } })).status, 200);
  assertRefused(await complete({ prompt: 'abc', logit_bias: { [EMBEDDING_ROWS]: 5 } }), 'logit_bias');

  assert.equal((await complete({ prompt: 'abc', stop_token_ids: [BETWEEN] })).status, 200);
  assertRefused(await complete({ prompt: 'abc', stop_token_ids: [EMBEDDING_ROWS] }), 'stop_token_ids');

  const generate = (context: number[]) =>
    post(`${server.url}/api/generate`, { model: 'padded', prompt: 'ab', context, stream: false, raw: true });
  assert.equal((await generate([BETWEEN])).status, 200);
  const r = await generate([EMBEDDING_ROWS]);
  assert.equal(r.status, 400);
  assert.match(r.json.error as string, /outside the vocabulary/);
});
