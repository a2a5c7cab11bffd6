import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertAllBlocksFree, fakeEngine } from '../helpers/engine.ts';
import { fakeTokenizer } from '../helpers/fake-model.ts';

test('request text is refused before tokenizing when it cannot fit; text that could fit is tokenized', async () => {
  const encoded: string[] = [];
  const engine = fakeEngine({
    maxModelLen: 101,
    // Each token of this tokenizer stands for at most 3 characters: 100 prompt tokens hold 300.
    tokenizer: { ...fakeTokenizer, maxCharsPerToken: 3 },
    promptEncoder: {
      encode: async (text) => {
        encoded.push(text);
        return fakeTokenizer.encode(text);
      },
      close: async () => {},
    },
  });
  assert.deepEqual(await engine.encode('a'.repeat(300)), Array(300).fill(1));
  await assert.rejects(engine.encode('a'.repeat(301)), (err: Error & { field?: string; code?: string }) => {
    assert.match(err.message, /the prompt is 301 characters, more than the 300 that can fit .* 101 tokens/);
    assert.equal(err.field, 'prompt');
    assert.equal(err.code, 'context_length_exceeded');
    return true;
  });
  assert.deepEqual(
    encoded.map((t) => t.length),
    [300],
    'the over-long text never reached the tokenizer',
  );
  await assert.rejects(async () => {
    for await (const _ of engine.generate({ prompt: 'b'.repeat(400) }));
  }, /400 characters/);
  assert.equal(encoded.length, 1);
  assertAllBlocksFree(engine);
});

test('without a known token span no text is refused before tokenizing', async () => {
  const engine = fakeEngine({ maxModelLen: 16 });
  assert.equal((await engine.encode('a'.repeat(1000))).length, 1000);
});
