import assert from 'node:assert/strict';
import { test } from 'node:test';
import { graphBuckets } from '../../src/backend/cuda/graphs.ts';

test('decode graph buckets: powers of two to 32, then every 32, and the largest batch itself', () => {
  assert.deepEqual(graphBuckets(256), [1, 2, 4, 8, 16, 32, 64, 96, 128, 160, 192, 224, 256]);
  assert.deepEqual(graphBuckets(100), [1, 2, 4, 8, 16, 32, 64, 96, 100]);
  assert.deepEqual(graphBuckets(48), [1, 2, 4, 8, 16, 32, 48]);
  assert.deepEqual(graphBuckets(8), [1, 2, 4, 8]);
  assert.deepEqual(graphBuckets(1), [1]);
});
