import assert from 'node:assert/strict';
import { test } from 'node:test';
import { proposeNgram } from '../../src/engine/ngram-proposer.ts';

const ngram = { min: 1, max: 3 };

test('the tokens after the most recent earlier occurrence of the longest matching suffix', () => {
  // Suffix [1,2,3] recurs at 0 and 5; the newest (5) is followed by 9, 8.
  assert.deepEqual(proposeNgram([1, 2, 3, 4, 7, 1, 2, 3, 9, 8, 1, 2, 3], 2, ngram), [9, 8]);
  assert.deepEqual(proposeNgram([1, 2, 3, 4, 7, 1, 2, 3, 9, 8, 1, 2, 3], 5, ngram), [9, 8, 1, 2, 3]);
});

test('a longer suffix wins over a more recent shorter one', () => {
  // [5,6] recurs at 0 (followed by 1); [6] alone recurs more recently at 4 (followed by 2).
  assert.deepEqual(proposeNgram([5, 6, 1, 0, 6, 2, 5, 6], 1, { min: 1, max: 2 }), [1]);
  assert.deepEqual(proposeNgram([5, 6, 1, 0, 6, 2, 5, 6], 1, { min: 1, max: 1 }), [2]);
});

test('nothing when no suffix of at least min tokens recurs, or k is 0', () => {
  assert.deepEqual(proposeNgram([1, 2, 3, 4], 3, ngram), []);
  assert.deepEqual(proposeNgram([1, 2, 9, 1, 2], 3, { min: 3, max: 3 }), []);
  assert.deepEqual(proposeNgram([1, 2, 1, 2], 0, ngram), []);
  assert.deepEqual(proposeNgram([7], 3, ngram), []);
});

test('the draft stops at the end of the tokens (an overlapping match proposes what exists)', () => {
  // [4,4] matches at 0, overlapping the suffix: only the last 4 follows it.
  assert.deepEqual(proposeNgram([4, 4, 4], 5, { min: 2, max: 2 }), [4]);
});
