// Writes this step's K and V rows [T, Hk*D] into the paged cache ([blocks, block_size, Hk, D], so a slot is one
// contiguous row of Hk*D). Slot -1 (padding) is skipped.
#include "common.cuh"

extern "C" __global__ void reshape_and_cache(const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ k_cache,
                                             T* __restrict__ v_cache, const int* __restrict__ slot_mapping,
                                             int row) {
  PDL_ENTER();
  const long long slot = slot_mapping[blockIdx.x];
  if (slot < 0) return;
  const long long src = (long long)blockIdx.x * row, dst = slot * row;
  for (int i = threadIdx.x; i < row; i += blockDim.x) {
    k_cache[dst + i] = k[src + i];
    v_cache[dst + i] = v[src + i];
  }
}

// The quantized cache's write (PAGODA_KV_QUANT, kv_quant.cuh): one block per token, as above. fp8: each value times
// 1 / the layer's K or V scale to e4m3 (one byte per value, the scale planes unused); q8_0: a warp per 32 values,
// their int8s to the cache and their half scale to the scale plane (row / 32 scales per slot).
#include "kv_quant.cuh"

extern "C" __global__ void quantize_and_cache(const T* __restrict__ k, const T* __restrict__ v,
                                              unsigned char* __restrict__ k_cache,
                                              unsigned char* __restrict__ v_cache,
                                              unsigned short* __restrict__ k_scales,
                                              unsigned short* __restrict__ v_scales,
                                              const int* __restrict__ slot_mapping, int row, float k_scale,
                                              float v_scale) {
  PDL_ENTER();
  const long long slot = slot_mapping[blockIdx.x];
  if (slot < 0) return;
  const long long src = (long long)blockIdx.x * row, dst = slot * row;
#if PAGODA_KV_QUANT == KV_Q8_0
  const int lane = threadIdx.x & 31;
  const int blocks = row / KV_Q8_BLOCK;
  for (int b = threadIdx.x >> 5; b < blocks; b += blockDim.x >> 5) {
    const long long at = b * KV_Q8_BLOCK;
    const long long scale_at = slot * blocks + b;
    q8_encode_block(as_f(k[src + at + lane]), k_cache + dst + at, k_scales + scale_at, lane);
    q8_encode_block(as_f(v[src + at + lane]), v_cache + dst + at, v_scales + scale_at, lane);
  }
#else
  const double k_inv = 1.0 / (double)k_scale, v_inv = 1.0 / (double)v_scale;
  for (int i = threadIdx.x; i < row; i += blockDim.x) {
    k_cache[dst + i] = fp8_encode(as_f(k[src + i]), k_inv);
    v_cache[dst + i] = fp8_encode(as_f(v[src + i]), v_inv);
  }
#endif
}
