import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResponseStore } from '../../src/server/openai/response-store.ts';

const entry = (text: string) => ({ response: { output_text: text }, input: [], own: 0 });

test('the response store evicts the least recently used past its count and its bytes', () => {
  const store = new ResponseStore(2, 1000);
  store.put('a', entry('1'));
  store.put('b', entry('2'));
  assert.ok(store.get('a'), 'a is now the most recently used');
  store.put('c', entry('3'));
  assert.deepEqual(
    ['a', 'b', 'c'].map((id) => store.get(id) !== undefined),
    [true, false, true],
  );
  // About 990 bytes: the count alone would evict only a; the bytes evict c too.
  store.put('big', entry('x'.repeat(950)));
  assert.deepEqual(
    ['a', 'c', 'big'].map((id) => store.get(id) !== undefined),
    [false, false, true],
    'room made for it by bytes',
  );
  store.put('huge', entry('x'.repeat(2000)));
  assert.equal(store.get('huge'), undefined, 'larger than the whole store: not kept');
  assert.ok(store.get('big'), 'and nothing evicted for it');
  assert.ok(store.delete('big'));
  assert.equal(store.delete('big'), false);
});
