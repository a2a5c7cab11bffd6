import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { GrowingBuffer } from '../../src/backend/cuda/growing-buffer.ts';

test('a growing buffer grows only past its size, drains the stream before freeing the old one, and says when it moved', () => {
  const calls: string[] = [];
  let next = 0x1000n;
  const drv = {
    alloc: (bytes: number) => {
      calls.push(`alloc ${bytes}`);
      next += 0x1000n;
      return next;
    },
    free: (ptr: bigint) => calls.push(`free ${ptr}`),
    sync: () => calls.push('sync'),
  } as unknown as CudaDriver;
  const b = new GrowingBuffer(drv);
  assert.equal(b.grow(100), true);
  const first = b.ptr;
  assert.equal(b.grow(100), false);
  assert.equal(b.grow(50), false);
  assert.equal(b.ptr, first);
  assert.equal(b.grow(300), true);
  assert.equal(b.bytes, 300);
  assert.notEqual(b.ptr, first);
  b.release();
  b.release();
  assert.deepEqual(calls, ['alloc 100', 'sync', `free ${first}`, 'alloc 300', 'sync', `free ${first + 0x1000n}`]);
  assert.equal(b.bytes, 0);
});
