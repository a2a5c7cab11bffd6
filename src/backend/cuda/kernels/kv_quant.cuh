// The quantized KV cache's stored forms (src/backend/cuda/kv-layout.ts sizes them), picked by PAGODA_KV_QUANT:
// 0 none (the cache is in the compute type), 1 fp8 e4m3 with one float scale per layer for K and one for V,
// 2 q8_0: an int8 plane of the values plus a plane of half scales, one per 32 values of a slot's row (ggml's q8_0
// block split in two, so the values load as 16-byte chunks). Encoders reproduce the CPU twins bit for bit
// (src/primitives/fp8.ts e4m3Bits, src/primitives/quant/legacy.ts Q8_0, float-bits.ts f16Bits): the stored bytes of
// either backend are the same. Header-free, so NVRTC needs no include paths.
#pragma once

#ifndef PAGODA_KV_QUANT
#define PAGODA_KV_QUANT 0
#endif

#define KV_FP8 1
#define KV_Q8_0 2
// Values per q8_0 scale.
#define KV_Q8_BLOCK 32

// float -> e4m3 bits as e4m3Bits does: round to nearest even, saturate to +-448, NaN -> 0x7f.
__device__ __forceinline__ unsigned char e4m3_bits(float x) {
  if (x != x) return 0x7f;
  const unsigned sign = (__float_as_uint(x) >> 24) & 0x80;
  const float a = fabsf(x);
  if (a >= 448.f) return (unsigned char)(sign | 0x7e);
  int e = (int)((__float_as_uint(a) >> 23) & 0xff) - 127;
  // Below the smallest normal (2^-6) values are multiples of 2^-9; a rounded-up 8 is exactly the smallest normal.
  if (e < -6) return (unsigned char)(sign | (unsigned)rintf(a * 512.f));
  int m = (int)rintf((a * __uint_as_float((unsigned)(127 - e) << 23) - 1.f) * 8.f);
  if (m == 8) {
    m = 0;
    e++;
  }
  return (unsigned char)min(sign | ((e + 7) << 3) | m, sign | 0x7e);
}

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

// A q8_0 block of 32 values, lane j holding x (a full warp): stores lane j's int8 at q[j] and, from lane 0, the
// block's half scale at *scale, as ggml's quantize_row_q8_0_ref does with the CPU twin's double arithmetic (a NaN
// in the block gives a NaN scale and zero values, as there).
__device__ __forceinline__ void q8_encode_block(float x, unsigned char* q, unsigned short* scale, int lane) {
  const bool any_nan = __any_sync(0xffffffffu, x != x);
  float amax = fabsf(x);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const double d = any_nan ? __longlong_as_double(0x7ff8000000000000ll) : (double)amax / 127.0;
  const double id = d != 0.0 && !any_nan ? 1.0 / d : 0.0;
  const double v = (double)x * id;
  int level = v != v ? 0 : (int)round(fabs(v));
  if (v < 0.0) level = -level;
  q[lane] = (unsigned char)(level & 0xff);
  if (lane == 0) *scale = f16_bits(__double2float_rn(d));
}

// Two e4m3 bytes (low 16 bits of `two`, the first in the low byte) as floats times scale; 0x7f / 0xff are NaN.
// e4m3 -> half is exact by moving bits (exponent bias 7 -> 15 is the factor 2^8, folded into scale256).
__device__ __forceinline__ float2 fp8x2_to_f2(unsigned two, float scale256) {
  const unsigned y = (two & 0xffu) | ((two & 0xff00u) << 8);
  unsigned h = ((y & 0x00800080u) << 8) | ((y & 0x007f007fu) << 7);
  if ((y & 0x7fu) == 0x7fu) h |= 0x7c00u;
  if ((y & 0x7f0000u) == 0x7f0000u) h |= 0x7c000000u;
  float lo, hi;
  asm("cvt.f32.f16 %0, %1;" : "=f"(lo) : "h"((unsigned short)(h & 0xffffu)));
  asm("cvt.f32.f16 %0, %1;" : "=f"(hi) : "h"((unsigned short)(h >> 16)));
  return make_float2(lo * scale256, hi * scale256);
}

// A half's bits as float.
__device__ __forceinline__ float half_bits_to_f(unsigned short h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}
