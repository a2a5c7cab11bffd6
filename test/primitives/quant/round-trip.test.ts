import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { QuantType } from '../../../src/primitives/ggml-types.ts';
import { codecOf, dequantize, quantize } from '../../../src/primitives/quant/index.ts';
import { randomBlocks } from '../../../src/primitives/quant/random.ts';
import { mulberry32 } from '../../../src/util/random.ts';

/**
 * Quantize → dequantize on normally distributed values: the error relative to the values' rms stays under a bound
 * per type, set a little above what ggml's reference quantizers reach on such data (more bits, tighter bound).
 */
const BOUNDS: Record<QuantType, number> = {
  q8_0: 0.007,
  q6_k: 0.022,
  q5_k: 0.045,
  q5_1: 0.045,
  q5_0: 0.05,
  q4_k: 0.085,
  q4_1: 0.09,
  q4_0: 0.1,
  q3_k: 0.18,
  q2_k: 0.33,
};

function gaussian(n: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from(
    { length: n },
    () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd()),
  );
}

function relativeError(a: Float32Array, b: Float32Array): number {
  let e = 0;
  let r = 0;
  for (let i = 0; i < a.length; i++) {
    e += (a[i]! - b[i]!) ** 2;
    r += a[i]! ** 2;
  }
  return Math.sqrt(e / r);
}

for (const [type, bound] of Object.entries(BOUNDS) as [QuantType, number][]) {
  test(`${type}: round trip within ${bound * 100}% rms error; zeros stay zeros; a constant row stays close`, () => {
    const x = gaussian(256 * 16, 7);
    // Rows of different magnitudes, as real weights have.
    for (let i = 0; i < x.length; i++) x[i]! *= 0.01 * (1 + (i >> 8));
    const bytes = quantize(type, x);
    assert.equal(bytes.length, (x.length / codecOf(type).blockSize) * codecOf(type).blockBytes);
    const err = relativeError(x, dequantize(type, bytes, x.length));
    assert.ok(err < bound, `${type}: relative error ${err}`);

    const zeros = dequantize(type, quantize(type, new Float32Array(256)), 256);
    assert.ok(
      zeros.every((v) => v === 0),
      `${type}: zeros came back as ${zeros.find((v) => v !== 0)}`,
    );

    const flat = dequantize(type, quantize(type, new Float32Array(256).fill(-0.75)), 256);
    assert.ok(
      flat.every((v) => Math.abs(v + 0.75) < 0.75 * 0.02),
      `${type}: -0.75 came back as ${flat[0]}`,
    );
  });
}

test('random blocks (dummy weights): every type decodes to varied values on the scale asked for', () => {
  for (const type of Object.keys(BOUNDS) as QuantType[]) {
    const bytes = randomBlocks(type, 256 * 8, 0.05, 3, 'w');
    const values = dequantize(type, bytes, 256 * 8);
    const rms = Math.sqrt(values.reduce((a, v) => a + v * v, 0) / values.length);
    assert.ok(rms > 0.005 && rms < 0.15, `${type}: rms ${rms}`);
    assert.ok(new Set(values).size > 64, `${type}: ${new Set(values).size} distinct values`);
  }
});
