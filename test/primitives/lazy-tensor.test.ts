import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostTensor } from '../../src/primitives/host-tensor.ts';
import { concatHostTensors, hostByteLength, LazyHostTensor, readHostBytes } from '../../src/primitives/lazy-tensor.ts';

const seq = (n: number, start = 0) => Uint8Array.from({ length: n }, (_, i) => (start + i * 7) & 255);

/** A lazy tensor over `data` that counts the reads it is asked for. */
function counted(name: string, data: Uint8Array) {
  const reads: [number, number][] = [];
  const t = new LazyHostTensor(name, [data.length / 2], 'bf16', data.length, (dst, from) => {
    reads.push([from, dst.length]);
    dst.set(data.subarray(from, from + dst.length));
  });
  return { t, reads };
}

test('a lazy tensor reads ranges into the caller buffer and reads `bytes` once, on first use', () => {
  const data = seq(40);
  const { t, reads } = counted('w', data);
  const dst = new Uint8Array(10);
  t.readInto(dst, 6);
  assert.deepEqual(dst, data.subarray(6, 16));
  assert.deepEqual(reads, [[6, 10]]);
  assert.equal(hostByteLength(t), 40);
  assert.deepEqual(reads.length, 1, 'the byte length needs no read');
  assert.deepEqual(t.bytes, data);
  assert.deepEqual(t.bytes, data);
  assert.equal(reads.length, 2, 'bytes read the file once');
  t.readInto(dst, 30);
  assert.equal(reads.length, 2, 'a range after `bytes` comes from them');
  assert.deepEqual(dst, data.subarray(30, 40));
  assert.throws(() => t.readInto(new Uint8Array(8), 36), /w: bytes \[36, 44\) are outside its 40/);
});

test('a spread copy of a lazy tensor has its bytes and never the reader (a changed copy stays correct)', () => {
  const data = seq(8);
  const { t } = counted('w', data);
  const copy: HostTensor = { ...t, name: 'renamed' };
  assert.deepEqual(copy.bytes, data);
  assert.ok(!(copy instanceof LazyHostTensor));
  const changed: HostTensor = { ...t, bytes: new Uint8Array(8).fill(9) };
  const dst = new Uint8Array(4);
  readHostBytes(changed, dst, 2);
  assert.deepEqual([...dst], [9, 9, 9, 9]);
});

test('concatenated tensors read each part only over the asked range, across part boundaries', () => {
  const a = counted('a', seq(6, 1));
  const b: HostTensor = { name: 'b', shape: [5], dtype: 'bf16', bytes: seq(10, 100) };
  const c = counted('c', seq(14, 200));
  const all = concatHostTensors('a + b + c', [15], 'bf16', [a.t, b, c.t]);
  const whole = new Uint8Array([...seq(6, 1), ...seq(10, 100), ...seq(14, 200)]);
  assert.equal(all.byteLength, 30);
  for (const [from, n] of [
    [0, 30],
    [0, 6],
    [5, 2],
    [6, 10],
    [4, 20],
    [15, 3],
    [29, 1],
  ] as const) {
    const dst = new Uint8Array(n).fill(0xee);
    all.readInto(dst, from);
    assert.deepEqual(dst, whole.subarray(from, from + n), `[${from}, ${from + n})`);
  }
  a.reads.length = 0;
  c.reads.length = 0;
  all.readInto(new Uint8Array(4), 8);
  assert.deepEqual(a.reads, [], 'a range inside b reads neither a nor c');
  assert.deepEqual(c.reads, []);
  assert.deepEqual(all.bytes, whole);
});
