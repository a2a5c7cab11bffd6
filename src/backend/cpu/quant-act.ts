import { f16Bits } from '../../primitives/float-bits.ts';
import type { QuantType } from '../../primitives/ggml-types.ts';
import { HALF, nearestInt } from '../../primitives/quant/codec.ts';

/**
 * Activation rows quantized to 8 bits the way ggml's CPU backend does before a quantized dot product: each weight
 * type has a `vec_dot_type` its activations are converted to (ggml's reference quantizers, round to nearest, float32
 * arithmetic), and the dot product then multiplies integer levels block by block (quant-dot.ts).
 *
 * - q8_0 (Q4_0, Q5_0, Q8_0 weights): per 32 values, d = amax/127 stored as a half, levels round(x/d) (ties away
 *   from zero).
 * - q8_1 (Q4_1, Q5_1): q8_0's levels, and s = d·Σlevels stored as a half (what the weights' offset m multiplies).
 * - q8_K (the k-quants): per 256 values, the value of largest magnitude maps to −127 (levels rounded ties to even),
 *   d kept in float32, and the sums of each 16 levels (what the weights' mins multiply).
 *
 * A quantized row set is one Float32Array: the T·n levels (small integers, exact in floats) first, then each block's
 * scale data in order, `ACT_BLOCK[type].floats` floats per block: [d] for q8_0, [d, s] for q8_1, [d, 16 sums] for
 * q8_K. Levels are kept as floats because V8 multiplies them as fast as f32 values, and every product and block sum
 * stays an integer far below 2^53, so the sums are exactly ggml's integer sums.
 */
export type ActType = 'q8_0' | 'q8_1' | 'q8_k';

export const ACT_TYPE: Record<QuantType, ActType> = {
  q8_0: 'q8_0',
  q4_0: 'q8_0',
  q5_0: 'q8_0',
  q4_1: 'q8_1',
  q5_1: 'q8_1',
  q2_k: 'q8_k',
  q3_k: 'q8_k',
  q4_k: 'q8_k',
  q5_k: 'q8_k',
  q6_k: 'q8_k',
};

/** Values per block and floats of scale data per block. */
export const ACT_BLOCK: Record<ActType, { readonly size: number; readonly floats: number }> = {
  q8_0: { size: 32, floats: 1 },
  q8_1: { size: 32, floats: 2 },
  q8_k: { size: 256, floats: 17 },
};

const f32 = Math.fround;

/** Writes block `b`'s levels over `out[i ..]` and its scale data at `out[s ..]`. */
type BlockQuantizer = (x: Float32Array, i: number, out: Float32Array, s: number) => void;

/** Float32's smallest normal number: below it 1/d overflows. */
const MIN_NORMAL = 2 ** -126;

/**
 * q8_0's levels for x[i .. i + 32) into out[i ..]; returns d in float32 (before it is stored as a half). `device`:
 * the CUDA kernel's rules where ggml's reference leaves the result undefined (an int8 cast of an infinity or a NaN):
 * levels 0 for a d that is NaN or below the smallest normal number.
 */
function q8Levels(x: Float32Array, i: number, out: Float32Array, device = false): number {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i + j]));
  const d = f32(amax / 127);
  const id = (device ? d >= MIN_NORMAL : d) ? f32(1 / d) : 0;
  for (let j = 0; j < 32; j++) {
    const v = f32(x[i + j] * id);
    // roundf, halves away from zero: |v| + 0.5 is exact for a float32 v, and Math.trunc much faster than Math.round.
    out[i + j] = device && Number.isNaN(v) ? 0 : Math.sign(v) * Math.trunc(Math.abs(v) + 0.5);
  }
  return d;
}

const QUANTIZE: Record<ActType, BlockQuantizer> = {
  q8_0(x, i, out, s) {
    out[s] = HALF[f16Bits(q8Levels(x, i, out))];
  },
  q8_1(x, i, out, s) {
    const d = q8Levels(x, i, out);
    let sum = 0;
    for (let j = 0; j < 32; j++) sum += out[i + j];
    out[s] = HALF[f16Bits(d)];
    out[s + 1] = HALF[f16Bits(f32(sum * d))];
  },
  q8_k(x, i, out, s) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 256; j++) {
      const ax = Math.abs(x[i + j]);
      if (ax > amax) {
        amax = ax;
        max = x[i + j];
      }
    }
    if (!amax) {
      out.fill(0, i, i + 256);
      out.fill(0, s, s + 17);
      return;
    }
    const iscale = f32(-127 / max);
    for (let j = 0; j < 256; j++) out[i + j] = Math.min(127, nearestInt(f32(iscale * x[i + j])));
    for (let k = 0; k < 16; k++) {
      let sum = 0;
      for (let j = 0; j < 16; j++) sum += out[i + 16 * k + j];
      out[s + 1 + k] = sum;
    }
    out[s] = f32(1 / iscale);
  },
};

/** x quantized per 32 values for the CUDA integer GEMV: levels, each group's d and its two 16-level sums. */
export interface Q8Groups {
  readonly levels: Int8Array;
  readonly d: Float32Array;
  /** Per group: the sum of levels 0..15, then of 16..31. */
  readonly sums: Int32Array;
}

/**
 * The CPU twin of kernels/quant_act.cu: x (a multiple of 32 values) as q8_0's levels with d kept in float32 (not
 * rounded to a half) and each 16 levels' sum (what the weights' mins multiply). A group with a NaN keeps d NaN, its
 * levels 0.
 */
export function quantizeQ8Groups(x: Float32Array): Q8Groups {
  const groups = x.length / 32;
  const levels = new Float32Array(x.length);
  const d = new Float32Array(groups);
  const sums = new Int32Array(2 * groups);
  for (let g = 0; g < groups; g++) {
    d[g] = q8Levels(x, 32 * g, levels, true);
    for (let j = 0; j < 32; j++) sums[2 * g + (j >> 4)]! += levels[32 * g + j]!;
  }
  return { levels: Int8Array.from(levels), d, sums };
}

/** x `[T, n]` (n a multiple of the block size) quantized to `type`: levels, then scale data (see above). */
export function quantizeActivations(type: ActType, x: Float32Array, T: number, n: number): Float32Array {
  const { size, floats } = ACT_BLOCK[type];
  const values = T * n;
  const out = new Float32Array(values + (values / size) * floats);
  const quantize = QUANTIZE[type];
  for (let b = 0; b < values / size; b++) quantize(x, b * size, out, values + b * floats);
  return out;
}

/**
 * What quantized activations stand for, level × d, as `[T, n]` floats. A dequantized weight row times these is
 * ggml's dot product up to float rounding, except with q8_1, whose offset term takes s rounded to a half.
 */
export function dequantizeActivations(type: ActType, acts: Float32Array, T: number, n: number): Float32Array {
  const { size, floats } = ACT_BLOCK[type];
  const values = T * n;
  const out = new Float32Array(values);
  for (let b = 0; b < values / size; b++) {
    const d = acts[values + b * floats];
    for (let j = b * size; j < (b + 1) * size; j++) out[j] = acts[j] * d;
  }
  return out;
}
