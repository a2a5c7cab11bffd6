import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ACT_BLOCK,
  dequantizeActivations,
  quantizeActivations,
  quantizeQ8Groups,
} from '../../../src/backend/cpu/quant-act.ts';
import { halfAt } from '../../../src/primitives/quant/codec.ts';
import { Q8_0 } from '../../../src/primitives/quant/legacy.ts';
import { mulberry32 } from '../../../src/util/random.ts';

/**
 * The activation quantizers against values worked out by hand from ggml's quantize_row_q8_0_ref, _q8_1_ref and
 * _q8_K_ref: which rounding each takes, which scale the levels are computed with, what is stored as a half.
 */

/** Values as plain numbers, −0 (a level a small negative value rounds to) read as 0. */
function plain(a: ArrayLike<number>): number[] {
  return Array.from(a, (v) => v + 0);
}

function block(size: number, set: Record<number, number>): Float32Array {
  const x = new Float32Array(size);
  for (const [i, v] of Object.entries(set)) x[Number(i)] = v;
  return x;
}

test('q8_0: levels from the float32 d = amax/127, halves away from zero; d stored as a half', () => {
  // amax 1: d = 1/127 is 0.00787353515625 as a half. 0.99603·127 = 126.496 gives 126; with the half's d it would
  // be 126.504 and give 127.
  const acts = quantizeActivations('q8_0', block(32, { 0: 1, 1: 0.5, 2: -0.5, 3: 0.99603, 4: -0.25 }), 1, 32);
  assert.deepEqual(plain(acts.subarray(0, 6)), [127, 64, -64, 126, -32, 0]);
  assert.equal(acts[32], 0.00787353515625);
  assert.equal(acts.length, 33);
  // amax 127: d = 1, so x·(1/d) = x exactly and ties show roundf's rounding.
  const ties = quantizeActivations('q8_0', block(32, { 0: 127, 1: 2.5, 2: -2.5, 3: 0.5, 4: 1.49 }), 1, 32);
  assert.deepEqual(plain(ties.subarray(0, 5)), [127, 3, -3, 1, 1]);
  assert.equal(ties[32], 1);
});

test('q8_0 activations are the blocks the Q8_0 weight codec (the same ggml reference) writes', () => {
  const rnd = mulberry32(7);
  const x = Float32Array.from({ length: 3 * 128 }, () => (rnd() - 0.5) * 8);
  const acts = quantizeActivations('q8_0', x, 3, 128);
  const bytes = new Uint8Array(34);
  for (let b = 0; b < 12; b++) {
    Q8_0.quantizeBlock(x, 32 * b, bytes, 0);
    const levels = new Int8Array(bytes.buffer, 2, 32);
    assert.deepEqual(plain(acts.subarray(32 * b, 32 * b + 32)), plain(levels), `block ${b}`);
    assert.equal(acts[384 + b], halfAt(bytes, 0), `block ${b}'s d`);
  }
});

test("q8_0's and q8_K's levels are roundf's and nearest_int's bit for bit (−0 included), over every tie a block can hold", () => {
  const f32 = Math.fround;
  const rnd = mulberry32(11);
  // Every 32 values open with ±127: d = 1 (q8_0) and iscale = ∓1 (q8_K, whose block's first it is), so the halves
  // among the rest are ties.
  const value = (i: number) => {
    if (i % 32 === 0) return (i >> 5) % 3 ? 127 : -127;
    return rnd() < 0.5 ? Math.round((rnd() - 0.5) * 508) / 2 : (rnd() - 0.5) * 250;
  };
  const x = Float32Array.from({ length: 64 * 256 }, (_, i) => value(i));
  const q80 = quantizeActivations('q8_0', x, 64, 256);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]!));
    const d = f32(amax / 127);
    const id = d ? f32(1 / d) : 0;
    for (let j = 32 * b; j < 32 * b + 32; j++) {
      const v = f32(x[j]! * id);
      assert.ok(Object.is(q80[j], Math.sign(v) * Math.round(Math.abs(v))), `q8_0 level ${j} of ${x[j]}`);
    }
  }
  const q8k = quantizeActivations('q8_k', x, 64, 256);
  for (let b = 0; b < x.length / 256; b++) {
    const iscale = f32(-127 / x[256 * b]!);
    for (let j = 256 * b; j < 256 * b + 256; j++) {
      const v = f32(iscale * x[j]!);
      const r = Math.round(v);
      const even = r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
      assert.ok(Object.is(q8k[j], Math.min(127, even)), `q8_K level ${j} of ${x[j]}`);
    }
  }
});

test('q8_1: q8_0 levels, and s = d·Σlevels with the float32 d, stored as a half', () => {
  const acts = quantizeActivations('q8_1', block(32, { 0: 1, 1: 0.5, 2: -0.5, 3: 0.99603 }), 1, 32);
  assert.deepEqual(plain(acts.subarray(0, 5)), [127, 64, -64, 126, 0]);
  // 253 · fround(1/127) = 1.99213 → the half 1.9921875
  assert.deepEqual(plain(acts.subarray(32)), [0.00787353515625, 1.9921875]);
});

test('q8_K: the largest magnitude maps to -127, ties to even, float32 d = 1/iscale, sums of 16 levels', () => {
  const negative = quantizeActivations('q8_k', block(256, { 0: 2.5, 1: 3.5, 2: -127, 3: -1.5, 16: 100 }), 1, 256);
  assert.deepEqual(plain(negative.subarray(0, 5)), [2, 4, -127, -2, 0]);
  assert.equal(negative[16], 100);
  const scales = negative.subarray(256);
  assert.equal(scales.length, ACT_BLOCK.q8_k.floats);
  assert.deepEqual(plain(scales.subarray(0, 3)), [1, 2 + 4 - 127 - 2, 100]);
  // A positive maximum: iscale = -1, so the levels change sign and d is -1.
  const positive = quantizeActivations('q8_k', block(256, { 0: 2.5, 1: 127 }), 1, 256);
  assert.deepEqual(plain(positive.subarray(0, 3)), [-2, -127, 0]);
  assert.deepEqual(plain(positive.subarray(256, 258)), [-1, -129]);
  const zero = quantizeActivations('q8_k', new Float32Array(256), 1, 256);
  assert.ok(zero.every((v) => v === 0));
});

test('dequantized activations are within half a step of x, row after row', () => {
  const rnd = mulberry32(3);
  const [T, n] = [2, 512];
  const x = Float32Array.from({ length: T * n }, () => (rnd() - 0.5) * 6);
  for (const type of ['q8_0', 'q8_k'] as const) {
    const { size, floats } = ACT_BLOCK[type];
    const acts = quantizeActivations(type, x, T, n);
    const back = dequantizeActivations(type, acts, T, n);
    for (let i = 0; i < T * n; i++) {
      const d = Math.abs(acts[T * n + Math.floor(i / size) * floats]!);
      // q8_0's d is a half: its levels were taken with the float32 d, up to 2^-11 away.
      assert.ok(Math.abs(back[i]! - x[i]!) <= d * (0.5 + 127 * 2 ** -11), `${type} value ${i}`);
    }
  }
});

test("the CUDA integer GEMV's groups (quantizeQ8Groups): q8_0's levels, d kept in float32, each 16 levels' sum", () => {
  const x = block(64, { 0: 1, 1: 0.5, 2: -0.5, 3: 0.99603, 4: -0.25, 20: -0.75, 32: 127, 33: 2.5, 34: -2.5 });
  const q = quantizeQ8Groups(x);
  assert.deepEqual(plain(q.levels.subarray(0, 6)), [127, 64, -64, 126, -32, 0]);
  assert.equal(q.levels[20], -95);
  assert.deepEqual(plain(q.levels.subarray(32, 35)), [127, 3, -3]);
  assert.deepEqual(Array.from(q.d), [Math.fround(1 / 127), 1]);
  assert.deepEqual(Array.from(q.sums), [127 + 64 - 64 + 126 - 32, -95, 127, 0]);
  const rnd = mulberry32(3);
  const y = Float32Array.from({ length: 256 }, () => (rnd() - 0.5) * 8);
  const acts = quantizeActivations('q8_0', y, 1, 256);
  assert.deepEqual(plain(quantizeQ8Groups(y).levels), plain(acts.subarray(0, 256)));
});

test('quantizeQ8Groups follows the CUDA kernel where ggml leaves it undefined: a NaN makes d NaN, a tiny d levels 0', () => {
  const x = block(96, { 0: 1, 3: Number.NaN, 32: 1e-37, 33: -5e-38, 64: 2 });
  const q = quantizeQ8Groups(x);
  assert.ok(Number.isNaN(q.d[0]!));
  assert.deepEqual(plain(q.levels.subarray(0, 64)), new Array(64).fill(0));
  assert.ok(q.d[1]! > 0 && q.d[1]! < 2 ** -126);
  assert.deepEqual(Array.from(q.sums.subarray(0, 4)), [0, 0, 0, 0]);
  assert.equal(q.levels[64], 127);
});
