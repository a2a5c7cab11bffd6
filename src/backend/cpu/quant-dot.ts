import type { QuantType } from '../../primitives/ggml-types.ts';
import { HALF } from '../../primitives/quant/codec.ts';
import { minK4, scaleK4 } from '../../primitives/quant/kquants-high.ts';

/**
 * Dot products of one quantized weight row with one activation row quantized to the weight type's 8-bit type
 * (quant-act.ts), as ggml's generic `vec_dot_*` take them: per block (per sub-block for the k-quants, weighted by
 * their integer scales) the weight levels times the activation levels summed as integers, then scaled once by the
 * weight's d times the activation's d; offsets enter through the activation's block sums (q8_1's s, q8_K's sums of
 * 16 levels) times the weight's m or mins. One function per type keeps each loop monomorphic for V8.
 *
 * Arguments: the row's blocks start at `off` in `q` (`s` is a signed view of the same bytes), the activation row's
 * levels at `a[ao]` and its first block's scale data at `a[so]`, and `n` is the row's width.
 */
export type RowDot = (
  q: Uint8Array,
  s: Int8Array,
  off: number,
  a: Float32Array,
  ao: number,
  so: number,
  n: number,
) => number;

const q8_0: RowDot = (q, s, off, a, ao, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 32, off += 34, so++) {
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += s[off + 2 + j] * a[ao + i + j];
    acc += HALF[q[off] | (q[off + 1] << 8)] * a[so] * sum;
  }
  return acc;
};

const q4_0: RowDot = (q, _s, off, a, ao, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 32, off += 18, so++) {
    let sum = 0;
    for (let j = 0; j < 16; j++) {
      const v = q[off + 2 + j];
      sum += ((v & 15) - 8) * a[ao + i + j] + ((v >> 4) - 8) * a[ao + i + j + 16];
    }
    acc += HALF[q[off] | (q[off + 1] << 8)] * a[so] * sum;
  }
  return acc;
};

const q4_1: RowDot = (q, _s, off, a, ao, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 32, off += 20, so += 2) {
    let sum = 0;
    for (let j = 0; j < 16; j++) {
      const v = q[off + 4 + j];
      sum += (v & 15) * a[ao + i + j] + (v >> 4) * a[ao + i + j + 16];
    }
    acc += HALF[q[off] | (q[off + 1] << 8)] * a[so] * sum + HALF[q[off + 2] | (q[off + 3] << 8)] * a[so + 1];
  }
  return acc;
};

/** Σ (level − zero)·a over a Q5 block's 32 values (nibbles at `qs`, fifth bits in the u32 at `qh`). */
function q5Sum(q: Uint8Array, qh: number, qs: number, a: Float32Array, ai: number, zero: number): number {
  const h = q[qh] | (q[qh + 1] << 8) | (q[qh + 2] << 16) | (q[qh + 3] << 24);
  let sum = 0;
  for (let j = 0; j < 16; j++) {
    const v = q[qs + j];
    sum +=
      (((v & 15) | (((h >>> j) & 1) << 4)) - zero) * a[ai + j] +
      (((v >> 4) | (((h >>> (j + 16)) & 1) << 4)) - zero) * a[ai + j + 16];
  }
  return sum;
}

const q5_0: RowDot = (q, _s, off, a, ao, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 32, off += 22, so++) {
    acc += HALF[q[off] | (q[off + 1] << 8)] * a[so] * q5Sum(q, off + 2, off + 6, a, ao + i, 16);
  }
  return acc;
};

const q5_1: RowDot = (q, _s, off, a, ao, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 32, off += 24, so += 2) {
    const sum = q5Sum(q, off + 4, off + 8, a, ao + i, 0);
    acc += HALF[q[off] | (q[off + 1] << 8)] * a[so] * sum + HALF[q[off + 2] | (q[off + 3] << 8)] * a[so + 1];
  }
  return acc;
};

// The k-quants: `so` walks q8_K's 17 floats per super-block, d then the 16 sums of 16 levels.

const q2_k: RowDot = (q, _s, off, a, ao, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 256, off += 84, so += 17) {
    let isum = 0;
    let msum = 0;
    for (let sb = 0; sb < 16; sb++) {
      const e = 16 * sb;
      const qs = off + 16 + 32 * (e >> 7) + (e & 31);
      const shift = 2 * ((e >> 5) & 3);
      const ai = ao + i + e;
      let sum = 0;
      for (let l = 0; l < 16; l++) sum += ((q[qs + l] >> shift) & 3) * a[ai + l];
      const sc = q[off + sb];
      isum += (sc & 15) * sum;
      msum += (sc >> 4) * a[so + 1 + sb];
    }
    const d = HALF[q[off + 80] | (q[off + 81] << 8)];
    const dmin = HALF[q[off + 82] | (q[off + 83] << 8)];
    acc += a[so] * (d * isum - dmin * msum);
  }
  return acc;
};

const q3_k: RowDot = (q, _s, off, a, ao, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 256, off += 110, so += 17) {
    const sc = off + 96;
    let isum = 0;
    for (let sb = 0; sb < 16; sb++) {
      const e = 16 * sb;
      const qs = off + 32 + 32 * (e >> 7) + (e & 31);
      const shift = 2 * ((e >> 5) & 3);
      const hm = off + (e & 31);
      const bit = e >> 5;
      const ai = ao + i + e;
      // level = low 2 bits + 4·(high bit) − 4; the −4 through the 16 levels' sum.
      let sum = 0;
      for (let l = 0; l < 16; l++) sum += (((q[qs + l] >> shift) & 3) | (((q[hm + l] >> bit) & 1) << 2)) * a[ai + l];
      const low = sb < 8 ? q[sc + sb] & 15 : q[sc + sb - 8] >> 4;
      const scale = (low | (((q[sc + 8 + (sb & 3)] >> (2 * (sb >> 2))) & 3) << 4)) - 32;
      isum += scale * (sum - 4 * a[so + 1 + sb]);
    }
    acc += HALF[q[off + 108] | (q[off + 109] << 8)] * a[so] * isum;
  }
  return acc;
};

const q4_k: RowDot = (q, _s, off, a, ao, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 256, off += 144, so += 17) {
    let isum = 0;
    let msum = 0;
    for (let c = 0; c < 4; c++) {
      const qs = off + 16 + 32 * c;
      const ai = ao + i + 64 * c;
      let lo = 0;
      let hi = 0;
      for (let l = 0; l < 32; l++) {
        const v = q[qs + l];
        lo += (v & 15) * a[ai + l];
        hi += (v >> 4) * a[ai + 32 + l];
      }
      const bs = so + 1 + 4 * c;
      isum += scaleK4(q, off + 4, 2 * c) * lo + scaleK4(q, off + 4, 2 * c + 1) * hi;
      msum += minK4(q, off + 4, 2 * c) * (a[bs] + a[bs + 1]) + minK4(q, off + 4, 2 * c + 1) * (a[bs + 2] + a[bs + 3]);
    }
    const d = HALF[q[off] | (q[off + 1] << 8)];
    const dmin = HALF[q[off + 2] | (q[off + 3] << 8)];
    acc += a[so] * (d * isum - dmin * msum);
  }
  return acc;
};

const q5_k: RowDot = (q, _s, off, a, ao, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 256, off += 176, so += 17) {
    let isum = 0;
    let msum = 0;
    for (let c = 0; c < 4; c++) {
      const qs = off + 48 + 32 * c;
      const qh = off + 16;
      const ai = ao + i + 64 * c;
      const b0 = 2 * c;
      const b1 = b0 + 1;
      let lo = 0;
      let hi = 0;
      for (let l = 0; l < 32; l++) {
        const v = q[qs + l];
        const h = q[qh + l];
        lo += ((v & 15) | (((h >> b0) & 1) << 4)) * a[ai + l];
        hi += ((v >> 4) | (((h >> b1) & 1) << 4)) * a[ai + 32 + l];
      }
      const bs = so + 1 + 4 * c;
      isum += scaleK4(q, off + 4, b0) * lo + scaleK4(q, off + 4, b1) * hi;
      msum += minK4(q, off + 4, b0) * (a[bs] + a[bs + 1]) + minK4(q, off + 4, b1) * (a[bs + 2] + a[bs + 3]);
    }
    const d = HALF[q[off] | (q[off + 1] << 8)];
    const dmin = HALF[q[off + 2] | (q[off + 3] << 8)];
    acc += a[so] * (d * isum - dmin * msum);
  }
  return acc;
};

const q6_k: RowDot = (q, s, off, a, ao, so, n) => {
  let acc = 0;
  for (let i = 0; i < n; i += 256, off += 210, so += 17) {
    let isum = 0;
    for (let half = 0; half < 2; half++) {
      const ql = off + 64 * half;
      const qh = off + 128 + 32 * half;
      const ai = ao + i + 128 * half;
      // Sub-blocks of 16: k = 0..3 (32 values apart), and the first or second 16 of each 32.
      for (let l0 = 0; l0 < 32; l0 += 16) {
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let l = l0; l < l0 + 16; l++) {
          const x = q[ql + l];
          const y = q[ql + 32 + l];
          const h = q[qh + l];
          s0 += ((x & 15) | ((h & 3) << 4)) * a[ai + l];
          s1 += ((y & 15) | (((h >> 2) & 3) << 4)) * a[ai + 32 + l];
          s2 += ((x >> 4) | (((h >> 4) & 3) << 4)) * a[ai + 64 + l];
          s3 += ((y >> 4) | (((h >> 6) & 3) << 4)) * a[ai + 96 + l];
        }
        // Levels are stored + 32: that share through the 16 levels' sums.
        const sb = 8 * half + (l0 >> 4);
        const bs = so + 1 + sb;
        const sc = off + 192 + sb;
        isum +=
          s[sc] * (s0 - 32 * a[bs]) +
          s[sc + 2] * (s1 - 32 * a[bs + 2]) +
          s[sc + 4] * (s2 - 32 * a[bs + 4]) +
          s[sc + 6] * (s3 - 32 * a[bs + 6]);
      }
    }
    acc += HALF[q[off + 208] | (q[off + 209] << 8)] * a[so] * isum;
  }
  return acc;
};

export const ROW_DOT: Record<QuantType, RowDot> = { q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k };

/**
 * Four consecutive rows (`stride` bytes apart) against one activation row, into out[o .. o + 4): each activation
 * level loaded once feeds four rows. Measured about 1.6-2x a single row's loop for Q8_0 here (V8, one core), where
 * the int8 loads are cheap and the activations' loads dominate; types whose levels cost more to unpack gain less and
 * take one row at a time.
 */
export type Rows4Dot = (
  q: Uint8Array,
  s: Int8Array,
  off: number,
  stride: number,
  a: Float32Array,
  ao: number,
  so: number,
  n: number,
  out: Float32Array,
  o: number,
) => void;

const q8_0x4: Rows4Dot = (q, s, off, stride, a, ao, so, n, out, o) => {
  let a0 = 0;
  let a1 = 0;
  let a2 = 0;
  let a3 = 0;
  const r1 = stride;
  const r2 = 2 * stride;
  const r3 = 3 * stride;
  for (let i = 0; i < n; i += 32, off += 34, so++) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    const b = off + 2;
    for (let j = 0; j < 32; j++) {
      const av = a[ao + i + j];
      s0 += s[b + j] * av;
      s1 += s[b + r1 + j] * av;
      s2 += s[b + r2 + j] * av;
      s3 += s[b + r3 + j] * av;
    }
    const d = a[so];
    a0 += HALF[q[off] | (q[off + 1] << 8)] * d * s0;
    a1 += HALF[q[off + r1] | (q[off + r1 + 1] << 8)] * d * s1;
    a2 += HALF[q[off + r2] | (q[off + r2 + 1] << 8)] * d * s2;
    a3 += HALF[q[off + r3] | (q[off + r3 + 1] << 8)] * d * s3;
  }
  out[o] = a0;
  out[o + 1] = a1;
  out[o + 2] = a2;
  out[o + 3] = a3;
};

export const ROWS4_DOT: Partial<Record<QuantType, Rows4Dot>> = { q8_0: q8_0x4 };
