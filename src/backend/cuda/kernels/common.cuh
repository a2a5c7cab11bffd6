// Shared by every pagoda kernel. PAGODA_DTYPE picks the storage type of activations, weights and KV cache:
// 0 = float, 1 = half, 2 = bfloat16. Arithmetic is always float.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "pdl.cuh"

// NVRTC has no math.h: define what the kernels use from it.
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

// `#pragma unroll N` with N from a define (a pragma's argument is not macro-expanded).
#define PRAGMA_STR(x) _Pragma(#x)
#define UNROLL_BY(n) PRAGMA_STR(unroll n)

#ifndef PAGODA_DTYPE
#define PAGODA_DTYPE 2
#endif

#if PAGODA_DTYPE == 0
typedef float T;
__device__ __forceinline__ float to_f(T x) { return x; }
__device__ __forceinline__ T from_f(float x) { return x; }
#elif PAGODA_DTYPE == 1
typedef __half T;
__device__ __forceinline__ float to_f(T x) { return __half2float(x); }
__device__ __forceinline__ T from_f(float x) { return __float2half_rn(x); }
#else
typedef __nv_bfloat16 T;
__device__ __forceinline__ float to_f(T x) { return __bfloat162float(x); }
__device__ __forceinline__ T from_f(float x) { return __float2bfloat16_rn(x); }
#endif

// Reads either storage type as float (the residual stream is kept in float).
__device__ __forceinline__ float as_f(float x) { return x; }
#if PAGODA_DTYPE != 0
__device__ __forceinline__ float as_f(T x) { return to_f(x); }
#endif

// A gated MLP's gate activation, picked by ACT: 0 SiLU (SwiGLU), 1 GELU's tanh form (GeGLU, Gemma).
#ifndef ACT
#define ACT 0
#endif
__device__ __forceinline__ float gate_act(float g) {
#if ACT == 1
  return 0.5f * g * (1.f + tanhf(0.7978845608028654f * (g + 0.044715f * g * g * g)));
#else
  return g / (1.f + expf(-g));
#endif
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  __shared__ float total;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float w = lane < (int)(blockDim.x >> 5) ? partial[lane] : 0.f;
    w = warp_sum(w);
    if (lane == 0) total = w;
  }
  __syncthreads();
  return total;
}

__device__ __forceinline__ float block_max(float v) {
  __shared__ float partial[32];
  __shared__ float total;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float w = lane < (int)(blockDim.x >> 5) ? partial[lane] : -INFINITY;
    w = warp_max(w);
    if (lane == 0) total = w;
  }
  __syncthreads();
  return total;
}
