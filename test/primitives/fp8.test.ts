import assert from 'node:assert/strict';
import { test } from 'node:test';
import { E4M3, E4M3_MAX, e4m3Bits } from '../../src/primitives/fp8.ts';

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
