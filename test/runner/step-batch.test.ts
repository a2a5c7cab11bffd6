import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildStepBatch } from '../../src/runner/step-batch.ts';

test('a mixed prefill + decode step maps tokens to slots, prefix sums and logit rows', () => {
  const b = buildStepBatch(
    [
      { tokenIds: [5, 6, 7], startPos: 2, blockTable: [3, 9], logits: 'last' },
      { tokenIds: [8], startPos: 8, blockTable: [1, 4, 6], logits: 'last' },
      { tokenIds: [1, 2], startPos: 0, blockTable: [2], logits: 'all' },
    ],
    4,
  );
  assert.deepEqual([...b.inputIds], [5, 6, 7, 8, 1, 2]);
  assert.deepEqual([...b.positions], [2, 3, 4, 8, 0, 1]);
  // block size 4: positions 2,3 -> block 3 (slots 14, 15); 4 -> block 9 (36); 8 -> block 6 (24); 0,1 -> block 2.
  assert.deepEqual([...b.slotMapping], [14, 15, 36, 24, 8, 9]);
  assert.deepEqual([...b.cuSeqlensQ], [0, 3, 4, 6]);
  assert.deepEqual([...b.contextLens], [5, 9, 2]);
  assert.deepEqual([...b.logitsIndices], [2, 3, 4, 5]);
  assert.deepEqual([...b.blockTables], [3, 9, 0, 1, 4, 6, 2, 0, 0]);
  assert.equal(b.maxSeqlenQ, 3);
  assert.equal(b.maxBlocksPerSeq, 3);
});

test('a block table too short for the chunk is refused', () => {
  assert.throws(
    () => buildStepBatch([{ tokenIds: [1, 2, 3], startPos: 3, blockTable: [0], logits: 'last' }], 4),
    /needs 2/,
  );
});

test('a compressed sequence keeps its positions while its slots and key count follow its cached entries', () => {
  const b = buildStepBatch(
    [
      { tokenIds: [4, 5], startPos: 41, cached: 14, blockTable: [7, 2, 5, 1], logits: 'last' },
      {
        tokenIds: [1, 2, 3, 4, 5, 6],
        startPos: 0,
        blockTable: [3, 6],
        logits: 'last',
        compress: { window: 2, budget: 5 },
      },
    ],
    4,
  );
  assert.deepEqual([...b.positions], [41, 42, 0, 1, 2, 3, 4, 5]);
  // Entries 14 and 15: the table's fourth block (1), offsets 2 and 3.
  assert.deepEqual([...b.slotMapping.subarray(0, 2)], [6, 7]);
  assert.deepEqual([...b.contextLens], [16, 6]);
  assert.deepEqual(b.kvCompression, [{ seq: 1, window: 2, budget: 5 }]);
  assert.equal(
    buildStepBatch([{ tokenIds: [1], startPos: 0, blockTable: [0], logits: 'last' }], 4).kvCompression,
    undefined,
  );
});
