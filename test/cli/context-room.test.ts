import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { localChat } from '../../src/cli/chat/backends.ts';
import { fitToContext } from '../../src/cli/chat/context-room.ts';
import { loadEngine } from '../../src/engine/load.ts';
import { projectRoot } from '../helpers/fixtures.ts';

test('num_predict is capped to the room the prompt leaves, whoever set it (as the Ollama API caps it)', () => {
  assert.equal(fitToContext({ maxTokens: 5000 }, {}, 12, 512).maxTokens, 500);
  assert.equal(fitToContext({}, { maxTokens: 5000 }, 12, 512).maxTokens, 500, "the model's num_predict");
  assert.equal(fitToContext({ maxTokens: 7 }, { maxTokens: 5000 }, 12, 512).maxTokens, 7, 'the flag wins');
  assert.equal(fitToContext({}, {}, 12, 512, 256).maxTokens, 256, 'the fallback when nobody set one');
  assert.equal(fitToContext({}, {}, 400, 512, 256).maxTokens, 112, 'the fallback capped too');
  assert.equal(fitToContext({ temperature: 1 }, {}, 12, 512).maxTokens, undefined, 'no limit stays none');
});

test('a prompt that leaves no room is one line naming num_ctx', () => {
  assert.throws(
    () => fitToContext({}, {}, 512, 512),
    /^UserError: the prompt is 512 tokens, but the model's context length \(num_ctx\) is 512 tokens$/,
  );
});

test('the in-process chat answers after /set parameter num_predict larger than the context', async () => {
  const loaded = loadEngine(join(projectRoot, 'test/fixtures/models/tiny-llama'), { log: () => {}, maxModelLen: 64 });
  try {
    const settings = { params: { maxTokens: 100_000, temperature: 0, ignoreEos: true }, raw: false };
    let answer = '';
    const stream = localChat(loaded, 'tiny-llama').stream(
      [{ role: 'user', content: 'Hi' }],
      settings,
      new AbortController().signal,
    );
    for await (const delta of stream) if (typeof delta === 'string') answer += delta;
    assert.ok(answer.length > 0);
  } finally {
    await loaded.engine.shutdown(true);
  }
});
