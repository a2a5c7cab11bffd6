// y[t, n] = sum_k x[t, k] * w[n, k] for the few rows of a decode step (t < rows <= TMAX): a bandwidth-bound
// matrix-vector product that reads each weight row once for all rows of x. A block of WARPS warps owns
// WARPS / SPLIT output features; SPLIT warps share one weight row, interleaved over K (each load is a coalesced
// 512-byte run), and their partial sums meet in shared memory. SPLIT > 1 gives narrow outputs (K/V projections)
// enough warps to fill the SMs; wide ones keep SPLIT = 1 (measured faster there). x (a few KB, shared by all
// blocks) comes through L1. Nothing is read before PDL_ENTER: issuing the first weight loads (to L2 or to registers)
// before the wait was measured slower on the H100 (bench/NOTES.md run 6).
// Needs K to be a multiple of the 16-byte vector and 16-byte aligned rows (the launcher checks).
#include "common.cuh"

#ifndef TMAX
#define TMAX 1
#endif
#ifndef SPLIT
#define SPLIT 1
#endif
#define WARPS 8
#define ROWS_PER_BLOCK (WARPS / SPLIT)
#define VEC (16 / (int)sizeof(T))

extern "C" __global__ void __launch_bounds__(WARPS * 32)
gemv(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w, int rows, int n, int k) {
  __shared__ float partial[WARPS][TMAX];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int part = warp % SPLIT;
  const int col = blockIdx.x * ROWS_PER_BLOCK + warp / SPLIT;
  const uint4* wr = reinterpret_cast<const uint4*>(w + (long long)col * k);
  const int kv = k / VEC;
  PDL_ENTER();
  float acc[TMAX];
#pragma unroll
  for (int t = 0; t < TMAX; t++) acc[t] = 0.f;
  if (col < n) {
#pragma unroll 4
    for (int i = part * 32 + lane; i < kv; i += 32 * SPLIT) {
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
  }
#pragma unroll
  for (int t = 0; t < TMAX; t++) acc[t] = warp_sum(acc[t]);
  if (SPLIT == 1) {
    if (lane == 0 && col < n) {
#pragma unroll
      for (int t = 0; t < TMAX; t++)
        if (t < rows) y[(long long)t * n + col] = from_f(acc[t]);
    }
    return;
  }
  if (lane == 0) {
#pragma unroll
    for (int t = 0; t < TMAX; t++) partial[warp][t] = acc[t];
  }
  __syncthreads();
  // One thread per (output feature of this block, row) adds the SPLIT partial sums in a fixed order.
  const int r = threadIdx.x / TMAX, t = threadIdx.x % TMAX;
  const int c = blockIdx.x * ROWS_PER_BLOCK + r;
  if (r < ROWS_PER_BLOCK && t < rows && c < n) {
    float s = 0.f;
#pragma unroll
    for (int p = 0; p < SPLIT; p++) s += partial[r * SPLIT + p][t];
    y[(long long)t * n + c] = from_f(s);
  }
}
