// The arithmetic of activations quantized to 8 bits per 32 values (q8_act.cuh describes the form), and one group
// quantized by a warp. Header-free (only q8_scale.cuh), so kernels built without CUDA's headers (the attention
// kernels) write the form too.
#pragma once
#include "q8_scale.cuh"

// The larger of a and b, NaN if either is (fmaxf returns the other operand).
__device__ __forceinline__ float q8_max(float a, float b) { return a > b || a != a ? a : b; }

// A group's scale d from its largest magnitude, kept in float.
__device__ __forceinline__ float q8_d(float amax) { return __fdiv_rn(amax, 127.f); }

// The reciprocal levels are taken with: 0 for a d below float's smallest normal number or NaN (false for NaN too).
__device__ __forceinline__ float q8_inverse(float d) { return d >= 1.17549435e-38f ? __fdiv_rn(1.f, d) : 0.f; }

// A value's level, rounded half away from zero; a NaN value's level converts to 0.
__device__ __forceinline__ int q8_level(float v, float id) { return (int)roundf(__fmul_rn(v, id)); }

// A group's scale record: d and the level sums of its values 0..15 (low) and 16..31 (high) as two int16.
__device__ __forceinline__ q8_scale q8_record(float d, int low, int high) { return {d, (low & 0xFFFF) | (high << 16)}; }

// One 32-value group quantized by a whole warp, lane l holding value l (a producer that keeps its values strided
// by warps: the RMSNorms, act_mul, the decode attention kernels): the same arithmetic as q8_quantize_chunk, so the same bits. Lane l writes level
// *q, lane 0 the group's scale record *s.
__device__ __forceinline__ void q8_quantize_lane(float v, signed char* q, q8_scale* s) {
  float amax = fabsf(v);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = q8_max(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const float d = q8_d(amax);
  const int level = q8_level(v, q8_inverse(d));
  *q = (signed char)level;
  int sum = level;
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  const int high = __shfl_down_sync(0xffffffffu, sum, 16);
  if ((threadIdx.x & 31) == 0) *s = q8_record(d, sum, high);
}
