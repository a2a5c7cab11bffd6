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

#include "kv_codec.cuh"

// A q8_0 block of 32 values, lane j holding x (a full warp): stores lane j's int8 at q[j] and, from lane 0, the
// block's half scale at *scale (kv_codec.cuh's kv_q8_scale and kv_q8_level over the warp's largest magnitude).
__device__ __forceinline__ void q8_encode_block(float x, unsigned char* q, unsigned short* scale, int lane) {
  const bool any_nan = __any_sync(0xffffffffu, x != x);
  float amax = fabsf(x);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float d = kv_q8_scale(amax, any_nan);
  q[lane] = kv_q8_level(x, d);
  if (lane == 0) *scale = f16_bits(d);
}

// Two decoded values (a plain struct: the header-free attention kernels do not rely on CUDA's vector types).
struct kv_f2 {
  float x, y;
};

// A half's bits as float.
__device__ __forceinline__ float half_bits_to_f(unsigned short h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}

// Two e4m3 bytes as floats times scale (scale256: the layer's scale times 2^8); NaN bytes are NaN.
__device__ __forceinline__ kv_f2 fp8x2_to_f2(unsigned two, float scale256) {
  const unsigned h = fp8x2_to_h2bits(two);
  kv_f2 f = {half_bits_to_f((unsigned short)(h & 0xffffu)) * scale256,
             half_bits_to_f((unsigned short)(h >> 16)) * scale256};
  if ((two & 0x7fu) == 0x7fu) f.x = __int_as_float(0x7fc00000);
  if ((two & 0x7f00u) == 0x7f00u) f.y = __int_as_float(0x7fc00000);
  return f;
}
