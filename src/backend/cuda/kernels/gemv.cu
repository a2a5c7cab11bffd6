// y[t, n] = sum_k x[t, k] * w[n, k] for the few rows of a decode step (t < rows <= TMAX): a bandwidth-bound
// matrix-vector product that reads each weight row once for all rows of x. One warp per output feature; each lane
// loads 16 bytes of the weight row at a time (coalesced 512-byte rows per warp), x comes through L1.
// Needs K to be a multiple of the 16-byte vector and 16-byte aligned rows (the launcher checks).
#include "common.cuh"

#ifndef TMAX
#define TMAX 1
#endif
#define WARPS 8
#define VEC (16 / (int)sizeof(T))


extern "C" __global__ void __launch_bounds__(WARPS * 32)
gemv(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w, int rows, int n, int k) {
  const int lane = threadIdx.x & 31;
  const int col = blockIdx.x * WARPS + (threadIdx.x >> 5);
  if (col >= n) return;
  const uint4* wr = reinterpret_cast<const uint4*>(w + (long long)col * k);
  float acc[TMAX];
#pragma unroll
  for (int t = 0; t < TMAX; t++) acc[t] = 0.f;
  const int kv = k / VEC;
#pragma unroll 4
  for (int i = lane; i < kv; i += 32) {
    const uint4 wu = __ldg(wr + i);
    const T* wv = reinterpret_cast<const T*>(&wu);
#pragma unroll
    for (int t = 0; t < TMAX; t++) {
      if (t >= rows) break;
      const uint4 xu = *(reinterpret_cast<const uint4*>(x + (long long)t * k) + i);
      const T* xv = reinterpret_cast<const T*>(&xu);
#pragma unroll
      for (int e = 0; e < VEC; e++) acc[t] += to_f(wv[e]) * to_f(xv[e]);
    }
  }
#pragma unroll
  for (int t = 0; t < TMAX; t++) {
    if (t >= rows) break;
    const float s = warp_sum(acc[t]);
    if (lane == 0) y[(long long)t * n + col] = from_f(s);
  }
}
