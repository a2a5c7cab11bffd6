// FP8 e4m3 weights and activations (one float32 scale per row): the conversions both ways, shared by
// fp8_weights.cu (quantize, GEMM epilogue) and gemv.cu (W_FP8). Arch-independent bit arithmetic, so the codes are
// those of src/primitives/fp8.ts e4m3Bits on every card.
#pragma once

// float -> e4m3 bits: round to nearest even, saturate to +-448, NaN -> 0x7f (e4m3Bits).
__device__ __forceinline__ unsigned char e4m3_from_float(float x) {
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

// An e4m3 code's value divided by 2^8: its bits moved into a half (exponent bias 7 -> 15 is the factor 2^-8,
// subnormals included), exact. Callers fold the 2^8 into the row scale (E4M3_HALF_SCALE). NaN codes never occur in
// quantized weights and are not decoded as NaN.
#define E4M3_HALF_SCALE 256.f
__device__ __forceinline__ float e4m3_to_float_div256(unsigned code) {
  return __half2float(__ushort_as_half((unsigned short)(((code & 0x80u) << 8) | ((code & 0x7fu) << 7))));
}
