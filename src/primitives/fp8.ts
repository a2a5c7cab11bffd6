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
