// FP8 e4m3 weights and activations (one float32 scale per row): the conversions both ways, shared by
// fp8_weights.cu (quantize, GEMM epilogue) and gemv.cu (W_FP8). Arch-independent bit arithmetic, so the codes are
// those of src/primitives/fp8.ts e4m3Bits on every card.
#pragma once
#include "e4m3.cuh"

// 16 e4m3 codes (one 16-byte load, the first in the lowest byte) as floats divided by 2^8, exactly: each code's bits
// moved into a half (exponent bias 7 -> 15 is the factor 2^-8, subnormals included), two codes per 32-bit operation
// (bytes 0 and 2, then 1 and 3, of each word). Callers fold the 2^8 into the row scale (E4M3_HALF_SCALE). NaN codes
// never occur in quantized weights and are not decoded as NaN.
#define E4M3_HALF_SCALE 256.f
__device__ __forceinline__ void e4m3x16_div256(const uint4& u, float (&out)[16]) {
  const unsigned words[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int w = 0; w < 4; w++) {
#pragma unroll
    for (int odd = 0; odd < 2; odd++) {
      const unsigned y = (words[w] >> (8 * odd)) & 0x00ff00ffu;
      const unsigned h = ((y & 0x00800080u) << 8) | ((y & 0x007f007fu) << 7);
      out[4 * w + odd] = __half2float(__ushort_as_half((unsigned short)(h & 0xffffu)));
      out[4 * w + odd + 2] = __half2float(__ushort_as_half((unsigned short)(h >> 16)));
    }
  }
}
