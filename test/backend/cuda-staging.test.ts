import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Readbacks } from '../../src/backend/cuda/readback.ts';
import { StepBuffers } from '../../src/backend/cuda/step-buffers.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { FakeStream } from '../helpers/fake-stream.ts';

const batchOf = (...seqs: number[][]) => buildPoolingBatch(seqs.map((tokenIds) => ({ tokenIds })));
const settled = <T>(p: Promise<T>) => {
  const state = { done: false };
  p.then(
    () => (state.done = true),
    () => (state.done = true),
  );
  return state;
};
const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('CUDA step metadata staging (simulated stream)', () => {
  test('the next step is staged while the last one waits for its copy; each copy carries its own step', () => {
    const fake = new FakeStream();
    const steps = new StepBuffers(fake, () => fake.event());
    steps.reserve({ tokens: 8, seqs: 4, blocksPerSeq: 1 });
    const seen: number[][] = [];
    const launch = (...seqs: number[][]) => {
      const ctx = steps.upload(batchOf(...seqs));
      const n = ctx.batch.inputIds.length;
      // The step's first kernel reads its ids from the device when the stream gets there.
      fake.kernel(() => seen.push([...new Int32Array(fake.bytesAt(ctx.ids, 4 * n).slice().buffer)]));
    };
    launch([1, 2, 3], [4]);
    launch([5, 6], [7, 8, 9]);
    // Two steps launched and the device has run nothing: the second staging did not wait for the first copy.
    assert.equal(fake.ran, 0);
    // The third reuses the first step's staging buffer: it waits for that step's copy only, not for its kernel.
    launch([10]);
    assert.equal(fake.ran, 2, 'ran the first copy and its event, nothing more');
    fake.sync();
    assert.deepEqual(seen, [[1, 2, 3, 4], [5, 6, 7, 8, 9], [10]]);
  });

  test('growing waits for the stream, then stages into new buffers at the same turn order', () => {
    const fake = new FakeStream();
    const steps = new StepBuffers(fake, () => fake.event());
    steps.upload(batchOf([1, 2]));
    const before = steps.pinnedBytes;
    assert.equal(fake.hostAllocations, 2);
    const big = Array.from({ length: 40 }, (_, i) => i);
    const ctx = steps.upload(batchOf(big));
    assert.ok(steps.pinnedBytes > before);
    assert.equal(fake.hostAllocations, 4);
    fake.sync();
    assert.deepEqual([...new Int32Array(fake.bytesAt(ctx.ids, 160).slice().buffer)], big);
  });
});

describe('CUDA readbacks (simulated stream)', () => {
  test('two steps’ rows on their way at once: each resolves with its own bytes when the device gets there', async () => {
    const fake = new FakeStream();
    const reads = new Readbacks(fake, () => fake.event());
    const rows = fake.alloc(16);
    const write = (values: number[]) =>
      fake.kernel(() => fake.bytesAt(rows, 16).set(new Uint8Array(Float32Array.from(values).buffer)));
    // Two steps write their rows at the same arena address; each step's copy is queued behind its own forward.
    write([1, 2, 3, 4]);
    const first = reads.read(rows, 16);
    write([5, 6, 7, 8]);
    const second = reads.read(rows, 16);
    const [s1, s2] = [settled(first), settled(second)];
    await turns(5);
    assert.deepEqual([s1.done, s2.done], [false, false], 'nothing resolves before the device runs');
    fake.advance(3); // the first forward, its copy, its event
    assert.deepEqual([...new Float32Array((await first).buffer)], [1, 2, 3, 4]);
    assert.equal(s2.done, false);
    fake.advance();
    assert.deepEqual([...new Float32Array((await second).buffer)], [5, 6, 7, 8]);
    assert.equal(fake.hostAllocations, 2, 'one pinned buffer per copy pending at once');
  });

  test("a started read is taken blocking (async scheduling's ids): the device runs up to its copy, no further", () => {
    const fake = new FakeStream();
    const reads = new Readbacks(fake, () => fake.event());
    const ids = fake.alloc(8);
    fake.kernel(() => fake.bytesAt(ids, 8).set([1, 0, 0, 0, 2, 0, 0, 0]));
    const first = reads.start(ids, 8);
    // The next step's work is queued behind the copy before the first ids are taken.
    fake.kernel(() => fake.bytesAt(ids, 8).set([3, 0, 0, 0, 4, 0, 0, 0]));
    const second = reads.start(ids, 8);
    assert.deepEqual([...new Int32Array(first.take().buffer)], [1, 2]);
    assert.ok(fake.pending > 0, 'the second step is still queued');
    assert.deepEqual([...new Int32Array(second.take().buffer)], [3, 4]);
    assert.throws(() => first.take(), /taken twice/);
    assert.equal(fake.hostAllocations, 2, 'one pinned buffer per read pending at once');
    reads.start(ids, 8).take();
    assert.equal(fake.hostAllocations, 2, 'taken buffers are reused');
  });

  test('buffers are reused once read, replaced when too small; an empty tensor needs no copy', async () => {
    const fake = new FakeStream();
    const reads = new Readbacks(fake, () => fake.event());
    const src = fake.alloc(4096);
    fake.bytesAt(src, 4).set([9, 8, 7, 6]);
    for (let i = 0; i < 3; i++) {
      const r = reads.read(src, 4);
      fake.sync();
      assert.deepEqual([...(await r)], [9, 8, 7, 6]);
    }
    assert.equal(fake.hostAllocations, 1);
    const big = reads.read(src, 4096);
    fake.sync();
    assert.equal((await big).length, 4096);
    assert.equal(fake.hostAllocations, 2);
    assert.equal((await reads.read(src, 0)).length, 0);
    assert.equal(fake.pending, 0);
  });
});
