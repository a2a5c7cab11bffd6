import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { parseJsonBody } from '../../src/server/body.ts';
import { decodeBody } from '../../src/server/body-encoding.ts';
import type { ApiError } from '../../src/server/errors.ts';

const parse = (text: string) => parseJsonBody(Buffer.from(text));
const refused = (text: string) => assert.throws(() => parse(text), /lone surrogate/, `${text} should be refused`);

test('lone surrogate escapes are refused wherever they are: values, keys, nested arrays, either case', () => {
  refused('{"model": "tiny\\udc00llama"}');
  refused('{"input": [[1, 2], ["a", "\\uD800"]]}');
  refused('{"\\uDBFF": 1}');
  refused('["\\ud83d"]');
});

test('surrogate pairs, escaped backslashes and plain bodies parse as JSON', () => {
  assert.deepEqual(parse('{"text": "\\ud83d\\ude00"}'), { text: '😀' });
  assert.deepEqual(parse('{"text": "\\\\ud800"}'), { text: '\\ud800' });
  assert.deepEqual(parse('{"input": [[1, 2, 3]], "model": "m"}'), { input: [[1, 2, 3]], model: 'm' });
  assert.equal(parse(''), undefined);
});

test('gzip, deflate and br bodies are decoded (a list of codings last first); the limit holds once decoded', async () => {
  const json = Buffer.from(JSON.stringify({ model: 'm', prompt: 'hi' }));
  for (const [coding, bytes] of [
    ['gzip', zlib.gzipSync(json)],
    ['x-gzip', zlib.gzipSync(json)],
    ['deflate', zlib.deflateSync(json)],
    ['BR', zlib.brotliCompressSync(json)],
    ['deflate, gzip', zlib.gzipSync(zlib.deflateSync(json))],
    ['identity', json],
  ] as const) {
    assert.deepEqual(await decodeBody(bytes, coding, 1 << 20), json, coding);
  }
  const bomb = zlib.gzipSync(Buffer.alloc(1 << 20, 32));
  await assert.rejects(
    decodeBody(bomb, 'gzip', 1000),
    (e: ApiError) => e.status === 413 && /once decoded/.test(e.message),
  );
  await assert.rejects(
    decodeBody(json, 'gzip', 1 << 20),
    (e: ApiError) => e.status === 400 && /not valid gzip data/.test(e.message),
  );
  await assert.rejects(
    decodeBody(json, 'zstd', 1 << 20),
    (e: ApiError) =>
      e.status === 415 && e.message === 'Content-Encoding "zstd" is not supported (expected gzip, deflate or br)',
  );
});
