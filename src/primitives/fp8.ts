/**
 * FP8 e4m3 ("e4m3fn", as PyTorch and NVIDIA spell it): 1 sign, 4 exponent (bias 7) and 3 mantissa bits, no
 * infinities, S.1111.111 is NaN, so the largest finite value is 448. FP8 checkpoints store weights in it and the FP8
 * KV cache stores keys and values in it.
 */

import { nearestInt } from './quant/codec.ts';

export const E4M3_MAX = 448;

function decode(bits: number): number {
  const sign = bits & 0x80 ? -1 : 1;
  const exp = (bits >> 3) & 15;
  const mant = bits & 7;
  if (exp === 15 && mant === 7) return Number.NaN;
  if (exp === 0) return sign * mant * 2 ** -9;
  return sign * (1 + mant / 8) * 2 ** (exp - 7);
}

/** Every e4m3 byte's value. */
export const E4M3 = Float32Array.from({ length: 256 }, (_, b) => decode(b));

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * float32 → e4m3 bits, rounding to nearest even; magnitudes beyond 448 saturate to ±448 (quantizers scale values into
 * range first, so saturation only absorbs rounding at the edge), NaN stays NaN.
 */
export function e4m3Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7f;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  f32[0] = Math.abs(x);
  const a = f32[0]!;
  if (a >= E4M3_MAX) return sign | 0x7e;
  const exp = ((u32[0]! >>> 23) & 0xff) - 127;
  // Below the smallest normal (2^-6) values are multiples of 2^-9; a rounded-up 8 is exactly the smallest normal.
  if (exp < -6) return sign | nearestInt(a * 2 ** 9);
  let e = exp;
  let m = nearestInt((a / 2 ** e - 1) * 8);
  if (m === 8) {
    m = 0;
    e++;
  }
  return Math.min(sign | ((e + 7) << 3) | m, sign | 0x7e);
}

/** An FP8 e4m3 matrix `[rows, cols]` with one float32 scale per row: value = E4M3[code] · scales[row]. */
export interface Fp8Rows {
  readonly codes: Uint8Array;
  readonly scales: Float32Array;
}

/**
 * A row's scale from its largest magnitude: amax / 448 in float32, so the largest value maps to ±448 (an all-zero
 * row takes 1, its codes all 0). The CUDA kernel (kernels/fp8_weights.cu) computes the same float32 division.
 */
export function fp8RowScale(amax: number): number {
  return amax > 0 ? Math.fround(amax / E4M3_MAX) : 1;
}

/**
 * Dynamic per-row FP8 quantization, as vLLM's dynamic fp8 does per output channel (weights) or per token
 * (activations): each row divided by its scale in float32, then rounded to e4m3. The CUDA kernel is bit-identical.
 */
export function quantizeFp8Rows(values: Float32Array, rows: number, cols: number): Fp8Rows {
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = values.subarray(r * cols, (r + 1) * cols);
    // The largest magnitude of the values that are numbers, as the kernels' fmaxf takes it (a NaN is skipped and
    // coded 0x7f, its row scaled by the rest).
    let amax = 0;
    for (let j = 0; j < cols; j++) {
      const a = Math.abs(row[j]!);
      if (a > amax) amax = a;
    }
    const scale = fp8RowScale(amax);
    scales[r] = scale;
    for (let j = 0; j < cols; j++) codes[r * cols + j] = e4m3Bits(Math.fround(row[j]! / scale));
  }
  return { codes, scales };
}

/** An FP8 matrix's values in float32 (each an e4m3 value times its row's scale, exact in float64, rounded once). */
export function dequantizeFp8Rows({ codes, scales }: Fp8Rows, cols: number): Float32Array {
  const out = new Float32Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = E4M3[codes[i]!]! * scales[Math.floor(i / cols)]!;
  return out;
}
