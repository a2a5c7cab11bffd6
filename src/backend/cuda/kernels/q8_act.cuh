// Activations quantized to 8 bits for the integer GEMV (quant_act.cu writes them, or the RMSNorm before the linear,
// norm.cu; quant_groups.cuh reads them): per
// 32 values, levels round(x / d) with d = amax / 127 kept in float, and the sums of each 16 levels (what the
// weights' mins multiply). The levels of a [rows, k] input lie in a [rows, k] int8 array, the scales in a
// [rows, k / 32] array of q8_scale. The arithmetic is src/backend/cpu/quant-act.ts's (quantizeQ8Groups, the CPU
// twin): d and its reciprocal rounded as IEEE float division, levels rounded half away from zero; a NaN makes its
// group's d NaN (so the GEMV's outputs are NaN, as the float route's would be) and a d below float's smallest normal
// number (whose reciprocal overflows) gives levels 0.
#pragma once
#include "common.cuh"
#include "q8_lane.cuh"

// 8 values of a row of x as float (16-bit storage: one 16-byte load).
__device__ __forceinline__ void load8(const T* __restrict__ p, float (&f)[8]) {
#if PAGODA_DTYPE == 0
  const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
#else
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const T* h = reinterpret_cast<const T*>(&u);
#pragma unroll
  for (int i = 0; i < 8; i++) f[i] = to_f(h[i]);
#endif
}

// load8's converse: 8 floats stored rounded to the storage type (16-bit: one 16-byte store).
__device__ __forceinline__ void store8(T* __restrict__ p, const float (&f)[8]) {
#if PAGODA_DTYPE == 0
  reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
#else
  uint4 u;
  T* h = reinterpret_cast<T*>(&u);
#pragma unroll
  for (int i = 0; i < 8; i++) h[i] = from_f(f[i]);
  *reinterpret_cast<uint4*>(p) = u;
#endif
}

// Chunk c (values 8c .. 8c + 7) of x quantized by a lane; the 4 lanes of a group (lanes 4i .. 4i + 3, chunks
// 4g .. 4g + 3) share its amax, and the first writes its scale. Every lane of the warp calls it (shuffles); one
// with `store` false (past the end, quantizing a valid chunk) writes nothing.
__device__ __forceinline__ void q8_quantize_chunk(const T* __restrict__ x, long long c, signed char* q, q8_scale* s,
                                                  bool store) {
  float v[8];
  load8(x + 8 * c, v);
  float amax = 0.f;
#pragma unroll
  for (int i = 0; i < 8; i++) amax = q8_max(amax, fabsf(v[i]));
  amax = q8_max(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
  amax = q8_max(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
  const float d = q8_d(amax);
  const float id = q8_inverse(d);
  unsigned w[2] = {0u, 0u};
  int sum = 0;
#pragma unroll
  for (int i = 0; i < 8; i++) {
    const int level = q8_level(v[i], id);
    sum += level;
    w[i >> 2] |= (unsigned)(level & 0xFF) << (8 * (i & 3));
  }
  if (store) *reinterpret_cast<uint2*>(q + 8 * c) = make_uint2(w[0], w[1]);
  // Lanes 4i, 4i + 1 hold values 0..15 of the group, 4i + 2, 4i + 3 values 16..31.
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  const int high = __shfl_down_sync(0xffffffffu, sum, 2);
  if (store && (c & 3) == 0) s[c >> 2] = q8_record(d, sum, high);
}
