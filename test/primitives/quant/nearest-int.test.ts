import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nearestInt } from '../../../src/primitives/quant/codec.ts';
import { mulberry32 } from '../../../src/util/random.ts';

/** Round to nearest, ties to even, as Math.round (ties up) with the ties fixed: the twin nearestInt must equal. */
function twin(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

test('nearestInt rounds ties to even, bit for bit as Math.round with its ties fixed: -0, NaN, infinities, 2^52 and on', () => {
  const edges = [0, -0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994, -0.49999999999999994, 1e-300, -1e-300];
  for (const p of [51, 52, 53]) {
    for (const k of [-1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3]) edges.push(2 ** p + k, -(2 ** p + k));
  }
  edges.push(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MAX_VALUE, -Number.MAX_VALUE);
  const rnd = mulberry32(3);
  const values = [...edges];
  for (let i = 0; i < 100000; i++) {
    // Halves and random doubles over many magnitudes, both signs.
    const v = (rnd() - 0.5) * 2 ** Math.floor(rnd() * 70 - 10);
    values.push(v, Math.round(v * 2) / 2);
  }
  for (const x of values)
    assert.ok(Object.is(nearestInt(x), twin(x)), `nearestInt(${x}) = ${nearestInt(x)}, not ${twin(x)}`);
});
