import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJsonBody } from '../../src/server/body.ts';

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
