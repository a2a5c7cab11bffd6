import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CanonicalJson } from '../../src/tools/canonical-json.ts';

/** `text` through a reader `size` characters a push. */
function read(text: string, size: number): CanonicalJson {
  const json = new CanonicalJson();
  for (let at = 0; at < text.length; at += size) json.push(text.slice(at, at + size));
  return json;
}

test('JSON rewritten as JSON.stringify(JSON.parse(text)) writes it, in any pieces', () => {
  const values = [
    '{"q": "a {b} \\"c\\" [d] \\\\ e\\/\\n\\t\\u0001", "u": "\\u00e9\\ud83d\\ude00 😀 \\u2028", "n": [1.50, -0, 2E2, 1e400]}',
    ' [ ] ',
    '"\\ud800 a lone surrogate, \\udc00 another"',
    '{"__proto__": {"a": []}, "t": [true, false, null, 0.5e-3]}',
  ];
  for (const text of values) {
    for (const size of [1, 2, 5, 1000]) {
      // A number at the top level ends at what follows it: a space here.
      const json = read(`${text} `, size);
      assert.deepEqual([json.status, json.text], ['done', JSON.stringify(JSON.parse(text))], `${text} by ${size}`);
    }
  }
});

test('what was written since the last take; where the value ends in the text', () => {
  const json = new CanonicalJson();
  json.push('{"a": "x\\ud83d');
  assert.equal(json.take(), '{"a":"x', 'a high surrogate waits for its pair');
  assert.equal(json.push('\\ude00"} and then </tool_call>'), '\\ude00"}'.length);
  assert.deepEqual([json.take(), json.status], ['😀"}', 'done']);
  assert.equal(json.take(), '');
});

test('text JSON.parse refuses fails the reader', () => {
  for (const bad of [
    '{"a" 1}',
    '[1,]',
    '{"a": 01}',
    '"\u0001"',
    '{"a": tru}',
    '"\\x"',
    '{,}',
    '[1 2]',
    '{"a":1,}',
    '[}',
  ]) {
    assert.throws(() => JSON.parse(bad));
    assert.equal(read(bad, 1).status, 'failed', bad);
  }
});
