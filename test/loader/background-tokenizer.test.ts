import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackgroundTokenizer } from '../../src/loader/background-tokenizer.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const tiny = modelFixture('tiny-llama');

test('long prompts are encoded in a worker thread to the same ids as inline', { skip: tiny.skip }, async () => {
  const tokenizer = loadTokenizer(tiny.path);
  const bt = new BackgroundTokenizer(tokenizer, tiny.path, undefined, { minChars: 100 });
  const long = 'Hello world, this is a long prompt with ünïcödé. '.repeat(200);
  const [a, b] = await Promise.all([bt.encode(long), bt.encode(`${long}!`)]);
  assert.deepEqual(a, tokenizer.encode(long));
  assert.deepEqual(b, tokenizer.encode(`${long}!`));
  assert.deepEqual(await bt.encode('short'), tokenizer.encode('short'));
  // Without special tokens (a chat template that writes its own BOS), in the worker and inline alike.
  const bare = { addSpecialTokens: false };
  assert.deepEqual(await bt.encode(long, bare), tokenizer.encode(long, bare));
  assert.deepEqual(await bt.encode('short', bare), tokenizer.encode('short', bare));
  assert.notDeepEqual(await bt.encode(long, bare), a, 'the option reaches the worker');
  await bt.close();
});
