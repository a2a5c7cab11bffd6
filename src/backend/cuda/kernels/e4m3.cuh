// float -> FP8 e4m3 bits, bit-identical to src/primitives/fp8.ts e4m3Bits on every card (arch-independent bit
// arithmetic): shared by the FP8 weights and activations (fp8_weights.cu) and the fp8 KV cache (kv_codec.cuh).
#pragma once

// Round to nearest even, saturate to +-448, NaN -> 0x7f.
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
