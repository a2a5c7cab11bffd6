import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cutForcedCalls } from '../../src/tools/cut-forced-calls.ts';

const list = '[{"name": "a", "arguments": {"x": [1]}}, {"name": "search", "arguments": {"q": "ab"}}]';

test('a forced call list cut anywhere: the finished calls, and the name and arguments text of the one cut', () => {
  const at = (n: number) => cutForcedCalls(list.slice(0, n));
  assert.deepEqual(at(1), { calls: [], cut: { name: null, argumentsText: '' } });
  assert.deepEqual(at(10), { calls: [], cut: { name: null, argumentsText: '' } }, 'the name is not finished');
  assert.deepEqual(at(14), { calls: [], cut: { name: 'a', argumentsText: '' } });
  assert.deepEqual(at(35), { calls: [], cut: { name: 'a', argumentsText: '{"x": [' } });
  const first = [{ name: 'a', arguments: { x: [1] } }];
  assert.deepEqual(at(41), { calls: first, cut: { name: null, argumentsText: '' } });
  assert.deepEqual(at(list.length - 5), { calls: first, cut: { name: 'search', argumentsText: '{"q": "a' } });
});
