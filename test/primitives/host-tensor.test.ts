import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeAs, halfToFloat } from '../../src/primitives/float-bits.ts';
import { type DType, toFloat32, widen16 } from '../../src/primitives/host-tensor.ts';

const values = Float32Array.from([0, -0, 1, -2.5, 3.140625, 65504, 1e-7, -1e30, Number.NaN, Number.POSITIVE_INFINITY]);

test('toFloat32 decodes f32, bf16 and f16 bytes, aligned or not, into a fresh array or the one given', () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as DType[]) {
    const bytes = encodeAs(values, dtype);
    const want = Float32Array.from(values, (v, i) => {
      if (dtype === 'f32') return v;
      const b = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
      return dtype === 'bf16' ? new Float32Array(new Uint32Array([b << 16]).buffer)[0]! : halfToFloat(b);
    });
    const t = { name: 'w', shape: [values.length], dtype };
    assert.deepEqual(toFloat32({ ...t, bytes }), want, dtype);
    // One byte into a larger buffer: the values no longer sit on their natural alignment.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    assert.deepEqual(toFloat32({ ...t, bytes: shifted.subarray(1) }), want, `${dtype}, misaligned`);
    const shared = new Float32Array(new SharedArrayBuffer(values.length * 4));
    assert.equal(toFloat32({ ...t, bytes }, shared), shared);
    assert.deepEqual([...shared], [...want], `${dtype}, into shared memory`);
  }
});

test('widen16 turns every bf16 bit pattern into its f32 bits, pairwise or one at a time, from any 2-byte offset', () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  for (const [offset, n] of [
    [0, 65536],
    [1, 65535],
    [1, 4000],
    [2, 3999],
  ] as const) {
    const half = all.subarray(offset, offset + n);
    const dst = new Float32Array(n).fill(Number.NaN);
    widen16('bf16', half, dst);
    const bits = new Uint32Array(dst.buffer);
    const wrong = bits.findIndex((b, i) => b !== half[i]! * 65536);
    assert.equal(wrong, -1, `offset ${offset}, ${n} values`);
  }
});
