// Value-at-a-time reads of the paged KV cache for the kernels on common.cuh's T (attention.cu, kv_compression.cu):
// kv_t is the stored element (T, or a byte of a quantized cache, PAGODA_KV_QUANT) and kv_value reads element i of
// a K or V cache as float. `scales` is the cache's q8_0 scales plane, a half per 32 consecutive values (i / 32);
// `scale` the fp8 layer scale.
#pragma once
#include "common.cuh"
#include "kv_quant.cuh"

#if PAGODA_KV_QUANT == 0
typedef T kv_t;
#else
typedef unsigned char kv_t;
#endif

__device__ __forceinline__ float kv_value(const kv_t* cache, const unsigned short* scales, float scale, long long i) {
#if PAGODA_KV_QUANT == KV_FP8
  return fp8x2_to_f2(cache[i], scale * 256.f).x;
#elif PAGODA_KV_QUANT == KV_Q8_0
  return (float)(signed char)cache[i] * half_bits_to_f(scales[i / KV_Q8_BLOCK]);
#else
  return to_f(cache[i]);
#endif
}
