import type { QuantType } from '../../primitives/ggml-types.ts';
import { HALF } from '../../primitives/quant/codec.ts';
import { minK4, scaleK4 } from '../../primitives/quant/kquants-high.ts';

/**
 * Dot products of one quantized weight row with one float activation row, straight from the blocks (no float copy of
 * the row): each block's integer levels are multiplied with x and summed, then scaled once per (sub-)block; offsets
 * (the _1 types' m, the k-quants' mins, the symmetric types' zero points) are applied through `xs`, the sums of x
 * over each 16 values, computed once per token. One function per type keeps each loop monomorphic for V8.
 *
 * Arguments: the row's blocks start at `off` in `q` (`s` is a signed view of the same bytes), x's row at `xo`, its
 * 16-value sums at `xs[so]`, and `n` is the row's width.
 */
export type RowDot = (
  q: Uint8Array,
  s: Int8Array,
  off: number,
  x: Float32Array,
  xo: number,
  xs: Float32Array,
  so: number,
  n: number,
) => number;

const q8_0: RowDot = (q, s, off, x, xo, _xs, _so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 32, off += 34) {
    const d = HALF[q[off] | (q[off + 1] << 8)];
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += s[off + 2 + j] * x[xo + i + j];
    acc += d * sum;
  }
  return acc;
};

const q4_0: RowDot = (q, _s, off, x, xo, xs, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 32, off += 18) {
    const d = HALF[q[off] | (q[off + 1] << 8)];
    let sum = 0;
    for (let j = 0; j < 16; j++) {
      const v = q[off + 2 + j];
      sum += (v & 15) * x[xo + i + j] + (v >> 4) * x[xo + i + j + 16];
    }
    acc += d * (sum - 8 * (xs[so + i / 16] + xs[so + i / 16 + 1]));
  }
  return acc;
};

const q4_1: RowDot = (q, _s, off, x, xo, xs, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 32, off += 20) {
    const d = HALF[q[off] | (q[off + 1] << 8)];
    const m = HALF[q[off + 2] | (q[off + 3] << 8)];
    let sum = 0;
    for (let j = 0; j < 16; j++) {
      const v = q[off + 4 + j];
      sum += (v & 15) * x[xo + i + j] + (v >> 4) * x[xo + i + j + 16];
    }
    acc += d * sum + m * (xs[so + i / 16] + xs[so + i / 16 + 1]);
  }
  return acc;
};

/** Σ level·x over a Q5 block's 32 values (nibbles at `qs`, fifth bits in the u32 at `qh`). */
function q5Sum(q: Uint8Array, qh: number, qs: number, x: Float32Array, xi: number): number {
  const h = q[qh] | (q[qh + 1] << 8) | (q[qh + 2] << 16) | (q[qh + 3] << 24);
  let sum = 0;
  for (let j = 0; j < 16; j++) {
    const v = q[qs + j];
    sum +=
      ((v & 15) | (((h >>> j) & 1) << 4)) * x[xi + j] + ((v >> 4) | (((h >>> (j + 16)) & 1) << 4)) * x[xi + j + 16];
  }
  return sum;
}

const q5_0: RowDot = (q, _s, off, x, xo, xs, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 32, off += 22) {
    const d = HALF[q[off] | (q[off + 1] << 8)];
    acc += d * (q5Sum(q, off + 2, off + 6, x, xo + i) - 16 * (xs[so + i / 16] + xs[so + i / 16 + 1]));
  }
  return acc;
};

const q5_1: RowDot = (q, _s, off, x, xo, xs, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 32, off += 24) {
    const d = HALF[q[off] | (q[off + 1] << 8)];
    const m = HALF[q[off + 2] | (q[off + 3] << 8)];
    acc += d * q5Sum(q, off + 4, off + 8, x, xo + i) + m * (xs[so + i / 16] + xs[so + i / 16 + 1]);
  }
  return acc;
};

const q2_k: RowDot = (q, _s, off, x, xo, xs, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 256, off += 84) {
    const d = HALF[q[off + 80] | (q[off + 81] << 8)];
    const dmin = HALF[q[off + 82] | (q[off + 83] << 8)];
    for (let sb = 0; sb < 16; sb++) {
      const e = 16 * sb;
      const qs = off + 16 + 32 * (e >> 7) + (e & 31);
      const shift = 2 * ((e >> 5) & 3);
      const xi = xo + i + e;
      let sum = 0;
      for (let l = 0; l < 16; l++) sum += ((q[qs + l] >> shift) & 3) * x[xi + l];
      const sc = q[off + sb];
      acc += d * (sc & 15) * sum - dmin * (sc >> 4) * xs[so + i / 16 + sb];
    }
  }
  return acc;
};

const q3_k: RowDot = (q, _s, off, x, xo, xs, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 256, off += 110) {
    const d = HALF[q[off + 108] | (q[off + 109] << 8)];
    const sc = off + 96;
    for (let sb = 0; sb < 16; sb++) {
      const e = 16 * sb;
      const qs = off + 32 + 32 * (e >> 7) + (e & 31);
      const shift = 2 * ((e >> 5) & 3);
      const hm = off + (e & 31);
      const bit = e >> 5;
      const xi = xo + i + e;
      // level = low 2 bits + 4·(high bit) − 4
      let sum = 0;
      for (let l = 0; l < 16; l++) sum += (((q[qs + l] >> shift) & 3) | (((q[hm + l] >> bit) & 1) << 2)) * x[xi + l];
      const low = sb < 8 ? q[sc + sb] & 15 : q[sc + sb - 8] >> 4;
      const scale = (low | (((q[sc + 8 + (sb & 3)] >> (2 * (sb >> 2))) & 3) << 4)) - 32;
      acc += d * scale * (sum - 4 * xs[so + i / 16 + sb]);
    }
  }
  return acc;
};

const q4_k: RowDot = (q, _s, off, x, xo, xs, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 256, off += 144) {
    const d = HALF[q[off] | (q[off + 1] << 8)];
    const dmin = HALF[q[off + 2] | (q[off + 3] << 8)];
    for (let c = 0; c < 4; c++) {
      const qs = off + 16 + 32 * c;
      const xi = xo + i + 64 * c;
      let lo = 0;
      let hi = 0;
      for (let l = 0; l < 32; l++) {
        const v = q[qs + l];
        lo += (v & 15) * x[xi + l];
        hi += (v >> 4) * x[xi + 32 + l];
      }
      const xsi = so + i / 16 + 4 * c;
      acc += d * (scaleK4(q, off + 4, 2 * c) * lo + scaleK4(q, off + 4, 2 * c + 1) * hi);
      acc -= dmin * (minK4(q, off + 4, 2 * c) * (xs[xsi] + xs[xsi + 1]));
      acc -= dmin * (minK4(q, off + 4, 2 * c + 1) * (xs[xsi + 2] + xs[xsi + 3]));
    }
  }
  return acc;
};

const q5_k: RowDot = (q, _s, off, x, xo, xs, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 256, off += 176) {
    const d = HALF[q[off] | (q[off + 1] << 8)];
    const dmin = HALF[q[off + 2] | (q[off + 3] << 8)];
    for (let c = 0; c < 4; c++) {
      const qs = off + 48 + 32 * c;
      const qh = off + 16;
      const xi = xo + i + 64 * c;
      const b0 = 2 * c;
      const b1 = b0 + 1;
      let lo = 0;
      let hi = 0;
      for (let l = 0; l < 32; l++) {
        const v = q[qs + l];
        const h = q[qh + l];
        lo += ((v & 15) | (((h >> b0) & 1) << 4)) * x[xi + l];
        hi += ((v >> 4) | (((h >> b1) & 1) << 4)) * x[xi + 32 + l];
      }
      const xsi = so + i / 16 + 4 * c;
      acc += d * (scaleK4(q, off + 4, b0) * lo + scaleK4(q, off + 4, b1) * hi);
      acc -= dmin * (minK4(q, off + 4, b0) * (xs[xsi] + xs[xsi + 1]));
      acc -= dmin * (minK4(q, off + 4, b1) * (xs[xsi + 2] + xs[xsi + 3]));
    }
  }
  return acc;
};

const q6_k: RowDot = (q, s, off, x, xo, xs, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 256, off += 210) {
    const d = HALF[q[off + 208] | (q[off + 209] << 8)];
    for (let half = 0; half < 2; half++) {
      const ql = off + 64 * half;
      const qh = off + 128 + 32 * half;
      const xi = xo + i + 128 * half;
      // Sub-blocks of 16: k = 0..3 (32 values apart), and the first or second 16 of each 32.
      for (let l0 = 0; l0 < 32; l0 += 16) {
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let l = l0; l < l0 + 16; l++) {
          const a = q[ql + l];
          const b = q[ql + 32 + l];
          const h = q[qh + l];
          s0 += ((a & 15) | ((h & 3) << 4)) * x[xi + l];
          s1 += ((b & 15) | (((h >> 2) & 3) << 4)) * x[xi + 32 + l];
          s2 += ((a >> 4) | (((h >> 4) & 3) << 4)) * x[xi + 64 + l];
          s3 += ((b >> 4) | (((h >> 6) & 3) << 4)) * x[xi + 96 + l];
        }
        const sb = 8 * half + (l0 >> 4);
        const xsi = so + i / 16 + sb;
        const sc = off + 192 + sb;
        acc +=
          d *
          (s[sc] * (s0 - 32 * xs[xsi]) +
            s[sc + 2] * (s1 - 32 * xs[xsi + 2]) +
            s[sc + 4] * (s2 - 32 * xs[xsi + 4]) +
            s[sc + 6] * (s3 - 32 * xs[xsi + 6]));
      }
    }
  }
  return acc;
};

export const ROW_DOT: Record<QuantType, RowDot> = { q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k };

/**
 * Four consecutive rows (`stride` bytes apart) against one x row, into out[o .. o + 4): each x value loaded once
 * feeds four rows. Measured about 1.6-2x a single row's loop for Q8_0 here (V8, one core), where the int8 loads
 * are cheap and x's loads dominate; types whose levels cost more to unpack gain less and take one row at a time.
 */
export type Rows4Dot = (
  q: Uint8Array,
  s: Int8Array,
  off: number,
  stride: number,
  x: Float32Array,
  xo: number,
  n: number,
  out: Float32Array,
  o: number,
) => void;

const q8_0x4: Rows4Dot = (q, s, off, stride, x, xo, n, out, o) => {
  let a0 = 0;
  let a1 = 0;
  let a2 = 0;
  let a3 = 0;
  const r1 = stride;
  const r2 = 2 * stride;
  const r3 = 3 * stride;
  for (let i = 0; i < n; i += 32, off += 34) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    const b = off + 2;
    for (let j = 0; j < 32; j++) {
      const xv = x[xo + i + j];
      s0 += s[b + j] * xv;
      s1 += s[b + r1 + j] * xv;
      s2 += s[b + r2 + j] * xv;
      s3 += s[b + r3 + j] * xv;
    }
    a0 += HALF[q[off] | (q[off + 1] << 8)] * s0;
    a1 += HALF[q[off + r1] | (q[off + r1 + 1] << 8)] * s1;
    a2 += HALF[q[off + r2] | (q[off + r2 + 1] << 8)] * s2;
    a3 += HALF[q[off + r3] | (q[off + r3 + 1] << 8)] * s3;
  }
  out[o] = a0;
  out[o + 1] = a1;
  out[o + 2] = a2;
  out[o + 3] = a3;
};

export const ROWS4_DOT: Partial<Record<QuantType, Rows4Dot>> = { q8_0: q8_0x4 };

/** Sums of x over each 16 values, per row: `[T, n / 16]` (the offsets' share of every dot product). */
export function sums16(x: Float32Array, T: number, n: number): Float32Array {
  const out = new Float32Array((T * n) / 16);
  for (let k = 0; k < (T * n) / 16; k++) {
    let sum = 0;
    for (let j = 0; j < 16; j++) sum += x[16 * k + j];
    out[k] = sum;
  }
  return out;
}
