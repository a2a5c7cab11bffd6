import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dequantizeFp8Rows, E4M3, E4M3_MAX, e4m3Bits, quantizeFp8Rows } from '../../src/primitives/fp8.ts';
import { mulberry32 } from '../../src/util/random.ts';

test('e4m3 decodes by the format: 1.0, the largest, the smallest normal and subnormal, NaN, signs', () => {
  assert.equal(E4M3[0x38], 1);
  assert.equal(E4M3[0x7e], E4M3_MAX);
  assert.equal(E4M3[0xfe], -E4M3_MAX);
  assert.equal(E4M3[0x08], 2 ** -6);
  assert.equal(E4M3[0x01], 2 ** -9);
  assert.equal(E4M3[0x07], 7 * 2 ** -9);
  assert.equal(E4M3[0x3c], 1.5);
  assert.ok(Number.isNaN(E4M3[0x7f]!) && Number.isNaN(E4M3[0xff]!));
});

test('every finite e4m3 value encodes back to its own bits', () => {
  for (let b = 0; b < 256; b++) {
    if ((b & 0x7f) === 0x7f) continue;
    assert.equal(e4m3Bits(E4M3[b]!), b, `byte 0x${b.toString(16)}`);
  }
});

test('encoding picks the nearest value, ties to the even mantissa, and saturates at 448', () => {
  // Brute force: the nearest finite code, ties to the one with an even last bit.
  const nearest = (x: number): number => {
    let best = -1;
    for (let b = 0; b < 256; b++) {
      if ((b & 0x7f) === 0x7f || (b & 0x80) !== (x < 0 ? 0x80 : 0)) continue;
      const d = Math.abs(E4M3[b]! - x);
      const bd = best < 0 ? Number.POSITIVE_INFINITY : Math.abs(E4M3[best]! - x);
      if (d < bd || (d === bd && (b & 1) === 0)) best = b;
    }
    return best;
  };
  let seed = 7;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let i = 0; i < 4000; i++) {
    const x = Math.fround((rand() - 0.5) * 2 ** (rand() * 24 - 12));
    if (Math.abs(x) >= E4M3_MAX) continue;
    assert.equal(e4m3Bits(x), nearest(x), `${x}`);
  }
  // Midpoints between neighbours go to the even code.
  assert.equal(e4m3Bits(1 + 1 / 16), 0x38); // between 1.0 (0x38) and 1.125 (0x39)
  assert.equal(e4m3Bits(1 + 3 / 16), 0x3a); // between 1.125 (0x39) and 1.25 (0x3a)
  assert.equal(e4m3Bits(2 ** -10), 0x00); // between 0 and the smallest subnormal
  assert.equal(e4m3Bits(1000), 0x7e);
  assert.equal(e4m3Bits(-1e9), 0xfe);
  assert.equal(e4m3Bits(Number.NaN), 0x7f);
});

test('per-row FP8: each row scaled by amax / 448, its largest value at ±448, an all-zero row at scale 1', () => {
  const values = Float32Array.of(...[1, -3, 0.5, 2], ...[0, 0, 0, 0], ...[-0.001, 0.002, 0.0005, 0]);
  const { codes, scales } = quantizeFp8Rows(values, 3, 4);
  assert.deepEqual([...scales], [Math.fround(3 / 448), 1, Math.fround(Math.fround(0.002) / 448)]);
  assert.equal(codes[1], 0xfe, 'the row maximum (-3) is -448');
  assert.equal(codes[5], 0, 'zeros stay zero');
  assert.equal(codes[9], 0x7e, 'the row maximum (0.002) is 448');
  for (let i = 0; i < values.length; i++) {
    const scale = scales[Math.floor(i / 4)]!;
    assert.equal(codes[i], e4m3Bits(Math.fround(values[i]! / scale)), `value ${i}: divided in float32, then rounded`);
  }
});

test("per-row FP8: a NaN is skipped by the row maximum, as the kernels' fmaxf skips it, and coded 0x7f", () => {
  const values = Float32Array.of(...[1, Number.NaN, -2, 0.5], ...[Number.NaN, Number.NaN, Number.NaN, Number.NaN]);
  const { codes, scales } = quantizeFp8Rows(values, 2, 4);
  assert.deepEqual([...scales], [Math.fround(2 / 448), 1], 'the rest of the row sets its scale; a row of NaNs takes 1');
  assert.deepEqual([codes[1], codes[2], ...codes.subarray(4)], [0x7f, 0xfe, 0x7f, 0x7f, 0x7f, 0x7f]);
});

test('per-row FP8 round trip: within half an e4m3 step (2^-4 relative, 2^-10 · scale absolute) of every value', () => {
  const rows = 16;
  const cols = 64;
  const rand = mulberry32(7);
  // Rows of very different magnitudes: each keeps its own range.
  const values = Float32Array.from({ length: rows * cols }, (_, i) => (rand() * 2 - 1) * 10 ** (((i >> 6) % 5) - 2));
  const q = quantizeFp8Rows(values, rows, cols);
  const back = dequantizeFp8Rows(q, cols);
  for (let i = 0; i < values.length; i++) {
    const s = q.scales[Math.floor(i / cols)]!;
    const err = Math.abs(back[i]! - values[i]!);
    assert.ok(err <= Math.max(Math.abs(values[i]!) * 2 ** -4, s * 2 ** -10) * 1.0001, `value ${i}: error ${err}`);
  }
  assert.deepEqual(quantizeFp8Rows(back, rows, cols).codes, q.codes, 'dequantized values quantize to the same codes');
});
