import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPlainDecode, padDecodeBatch } from '../../src/backend/cuda/step-buffers.ts';
import { buildStepBatch } from '../../src/runner/step-batch.ts';

test('a decode step is graphed unless it compacts a KV cache; padding keeps positions apart from key counts', () => {
  const decode = buildStepBatch(
    [
      { tokenIds: [7], startPos: 40, cached: 12, blockTable: [3], logits: 'last' },
      { tokenIds: [8], startPos: 5, blockTable: [4], logits: 'last' },
    ],
    16,
  );
  assert.ok(isPlainDecode(decode));
  const padded = padDecodeBatch(decode, 4);
  assert.deepEqual([...padded.positions], [40, 5, 0, 0]);
  assert.deepEqual([...padded.contextLens], [13, 6, 1, 1]);
  assert.deepEqual([...padded.slotMapping], [3 * 16 + 12, 4 * 16 + 5, -1, -1]);
  // A prompt's last token alone in its chunk, compressed by this step: its compaction is not in any graph.
  const compressing = buildStepBatch(
    [{ tokenIds: [9], startPos: 20, blockTable: [1, 2], logits: 'last', compress: { window: 1, budget: 8 } }],
    16,
  );
  assert.equal(isPlainDecode(compressing), false);
});
