// The quantized KV cache's scalar encoders, bit-identical to the CPU twins (src/primitives/fp8.ts e4m3Bits,
// float-bits.ts f16Bits, kv-store.ts writeRows' fp8 arithmetic, legacy.ts Q8_0), and the attention kernels' byte
// decoders. Plain float and integer code on a few CUDA intrinsics, so test/backend/kv-codec-host.test.ts also builds
// it for the host and compares it with the twins over every bf16 input and every byte.
#pragma once
#include "e4m3.cuh"

// float -> IEEE half bits as f16Bits does (round to nearest even, overflow to infinity, below 2^-25 to zero).
__device__ __forceinline__ unsigned short f16_bits(float x) {
  const unsigned u = __float_as_uint(x);
  const unsigned sign = (u >> 16) & 0x8000;
  const int exp = (u >> 23) & 0xff;
  unsigned mant = u & 0x7fffff;
  if (exp == 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  int e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const int shift = 14 - e;
    const unsigned half = 1u << (shift - 1);
    unsigned m = mant >> shift;
    const unsigned rest = mant & ((1u << shift) - 1);
    if (rest > half || (rest == half && (m & 1))) m++;
    return sign | m;
  }
  unsigned m = mant >> 13;
  const unsigned rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (m & 1))) {
    m++;
    if (m == 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

// One fp8 value as the CPU writes it: x times the inverse scale in double, rounded to float, then to e4m3.
__device__ __forceinline__ unsigned char fp8_encode(float x, double inv_scale) {
  return e4m3_bits(__double2float_rn((double)x * inv_scale));
}

// A q8_0 block's scale d from its largest magnitude, in float32 as ggml's quantize_row_q8_0_ref and the CPU twin
// compute it: amax / 127, NaN when the block holds a NaN (the CPU's Math.max propagates it).
__device__ __forceinline__ float kv_q8_scale(float amax, bool any_nan) {
  return any_nan ? __int_as_float(0x7fc00000) : amax / 127.0f;
}

// Value x's int8 level (as a byte) in a block of scale d: x times the float32 inverse of d, rounded half away from
// zero (roundf); a NaN scale or product gives 0, as the CPU's `Math.round(NaN) & 0xff` does.
__device__ __forceinline__ unsigned char kv_q8_level(float x, float d) {
  const float id = d != 0.f && d == d ? 1.0f / d : 0.f;
  const float v = x * id;
  int level = v != v ? 0 : (int)roundf(fabsf(v));
  if (v < 0.f) level = -level;
  return (unsigned char)(level & 0xff);
}

// Two e4m3 bytes (low 16 bits of `two`, the first in the low byte) as the bits of two halves (the first in the low
// half) holding each value times 2^-8: exact by moving bits (the exponent bias goes from 7 to 15), subnormals
// included. The NaN bytes (0x7f, 0xff) are not special here: callers check them.
__device__ __forceinline__ unsigned fp8x2_to_h2bits(unsigned two) {
  const unsigned y = (two & 0xffu) | ((two & 0xff00u) << 8);
  return ((y & 0x00800080u) << 8) | ((y & 0x007f007fu) << 7);
}

// Byte B of a q8_0 word whose bytes had their sign bits flipped (`biased` = x ^ 0x80808080, so the byte is the int8
// plus 128) as the int8's value: the byte as the low mantissa of 2^23, minus 2^23 + 128 (exact; no I2F).
template <int B>
__device__ __forceinline__ float s8_byte(unsigned biased) {
  return __uint_as_float(0x4b000000u | ((biased >> (8 * B)) & 0xffu)) - 8388736.f;
}
