#pragma once
#include "common.cuh"

// The mixture's output for token t, feature h: its k experts' grouped rows d[pos[t k + j], h] weighted in slot order,
// plus the shared expert's s[t, h] scaled by sigmoid(shared_gate[t]) (by 1 when shared_gate is null; no shared term
// when s is null). d is read through L2 (ld.cg): moe_down_combine's last block reads rows other blocks just wrote.
__device__ __forceinline__ T moe_combined(const T* d, const int* __restrict__ pos, const float* __restrict__ weights,
                                          const T* __restrict__ s, const T* __restrict__ shared_gate, int t, int h,
                                          int hidden, int k) {
  float acc = 0.f;
  for (int j = 0; j < k; j++) acc += weights[t * k + j] * to_f(__ldcg(d + (long long)pos[t * k + j] * hidden + h));
  if (s) {
    const float g = shared_gate ? 1.f / (1.f + expf(-to_f(shared_gate[t]))) : 1.f;
    acc += g * to_f(s[(long long)t * hidden + h]);
  }
  return from_f(acc);
}
