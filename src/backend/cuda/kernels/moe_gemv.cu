// The mixture-of-experts grouped GEMV for a decode step's few tokens (at most TMAX): kernels/gemv.cu's weight stream
// (SPLIT warps share a group's weight rows, interleaved over K in 16-byte loads; partial sums meet in shared memory)
// run once per chosen expert. blockIdx.y is an entry of moe_group's `active` list (the experts with rows, ascending;
// -1 past them: gridDim.y = min(rows, experts) covers every expert that can be chosen), blockIdx.x a tile of its
// output features, so the whole grid streams the chosen experts' weights at once and each weight row is read once for
// all of its expert's rows. A token chooses an expert at most once, so an expert has at most TMAX rows: x rows
// src(r) = pairs[r] / gather_k (a token, for the first projection) or r (grouped rows, gather_k 0), read through L1
// as the dense GEMV reads x. With GATED the weight is a packed gate/up [experts, 2n, k] and y = act(gate) * up, the
// activation by ACT (no [rows, 2n] round trip, no second launch). y [rows, n] in grouped order. Needs k to be a whole
// number of 16-byte vectors and 16-byte aligned bases (the launcher checks; arena and weight allocations are).
// moe_down_combine is the down projection with moe_combine folded in (a decode step's launch fewer).
#include "common.cuh"
#include "moe_combine.cuh"

#ifndef TMAX
#define TMAX 1
#endif
#ifndef SPLIT
#define SPLIT 1
#endif
#ifndef GATED
#define GATED 0
#endif
// Weight rows a warp group reads together: gate row c and up row n + c (one output), or 2 consecutive outputs.
#define ROWS 2
#define OUTS (GATED ? 1 : ROWS)
#define WARPS 8
#define GROUPS_PER_BLOCK (WARPS / SPLIT)
#define VEC (16 / (int)sizeof(T))

// n: output features (GATED: the weight has 2n rows per expert). Called by the whole block after PDL_ENTER.
__device__ __forceinline__ void grouped_gemv(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w,
                                             const int* __restrict__ offsets, const int* __restrict__ pairs,
                                             const int* __restrict__ active, int n, int k, int gather_k) {
  __shared__ float partial[WARPS][ROWS][TMAX];
  const int e = active[blockIdx.y];
  if (e < 0) return;  // the whole block: no barrier below is skipped by part of it
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int part = warp % SPLIT;
  const int g = blockIdx.x * GROUPS_PER_BLOCK + warp / SPLIT;
  const bool live = g * OUTS < n;
  const T* we = w + (long long)e * (GATED ? 2 : 1) * n * k;
  const uint4* wr[ROWS];
#pragma unroll
  for (int q = 0; q < ROWS; q++) {
    // A ragged last group re-reads the last row (its sum is not written).
    const long long row = GATED ? (long long)g + (long long)q * n : (long long)min(g * ROWS + q, n - 1);
    wr[q] = reinterpret_cast<const uint4*>(we + row * k);
  }
  // The weight stream runs a load ahead of the sums, and its first load goes out before the x rows' addresses, which
  // wait on offsets and then pairs.
  const int kv = k / VEC, step = 32 * SPLIT;
  int i = part * 32 + lane;
  const bool streams = live && i < kv;
  uint4 wu[ROWS];
  if (streams)
#pragma unroll
    for (int q = 0; q < ROWS; q++) wu[q] = __ldg(wr[q] + i);
  const int r0 = offsets[e], rows = min(offsets[e + 1] - r0, TMAX);
  const uint4* xr[TMAX];
#pragma unroll
  for (int t = 0; t < TMAX; t++) {
    const int r = r0 + min(t, rows - 1);  // past the expert's rows: a valid row, never summed
    xr[t] = reinterpret_cast<const uint4*>(x + (long long)(gather_k > 0 ? pairs[r] / gather_k : r) * k);
  }
  float acc[ROWS][TMAX];
#pragma unroll
  for (int q = 0; q < ROWS; q++)
#pragma unroll
    for (int t = 0; t < TMAX; t++) acc[q][t] = 0.f;
  if (streams) {
#pragma unroll 4
    for (; i < kv; i += step) {
      uint4 next[ROWS];
      if (i + step < kv)
#pragma unroll
        for (int q = 0; q < ROWS; q++) next[q] = __ldg(wr[q] + i + step);
#pragma unroll
      for (int t = 0; t < TMAX; t++) {
        if (t >= rows) break;
        const uint4 xu = xr[t][i];
        const T* xv = reinterpret_cast<const T*>(&xu);
#pragma unroll
        for (int q = 0; q < ROWS; q++) {
          const T* wv = reinterpret_cast<const T*>(&wu[q]);
#pragma unroll
          for (int v = 0; v < VEC; v++) acc[q][t] += to_f(wv[v]) * to_f(xv[v]);
        }
      }
#pragma unroll
      for (int q = 0; q < ROWS; q++) wu[q] = next[q];
    }
  }
#pragma unroll
  for (int q = 0; q < ROWS; q++)
#pragma unroll
    for (int t = 0; t < TMAX; t++) acc[q][t] = warp_sum(acc[q][t]);
  if (lane == 0) {
#pragma unroll
    for (int q = 0; q < ROWS; q++)
#pragma unroll
      for (int t = 0; t < TMAX; t++) partial[warp][q][t] = acc[q][t];
  }
  __syncthreads();
  // One thread per (group of this block, row of the expert) adds the SPLIT partial sums in a fixed order.
  const int gq = threadIdx.x / TMAX, t = threadIdx.x % TMAX;
  const int feature = (blockIdx.x * GROUPS_PER_BLOCK + gq) * OUTS;
  if (gq >= GROUPS_PER_BLOCK || t >= rows || feature >= n) return;
  float s[ROWS];
#pragma unroll
  for (int q = 0; q < ROWS; q++) {
    s[q] = 0.f;
#pragma unroll
    for (int p = 0; p < SPLIT; p++) s[q] += partial[gq * SPLIT + p][q][t];
  }
  T* yr = y + (long long)(r0 + t) * n;
#if GATED
  yr[feature] = from_f(gate_act(s[0]) * s[1]);
#else
#pragma unroll
  for (int q = 0; q < ROWS; q++)
    if (feature + q < n) yr[feature + q] = from_f(s[q]);
#endif
}

// The first projection (GATED) of a decode step; built without GATED it is the separate down projection that
// test/gpu/moe-kernels.test.ts holds moe_down_combine to, bit for bit.
extern "C" __global__ void __launch_bounds__(WARPS * 32)
    moe_gemv(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w, const int* __restrict__ offsets,
             const int* __restrict__ pairs, const int* __restrict__ active, int n, int k, int gather_k) {
  PDL_ENTER();
  grouped_gemv(y, x, w, offsets, pairs, active, n, k, gather_k);
}

#if !GATED
// The down projection d [rows, n] (grouped order) as moe_gemv, then moe_combine's out [tokens, n] for this block's
// features, written by the last of the gridDim.y blocks of its column to finish: each block fences its rows of d before
// counting itself in done[blockIdx.x], which is zero between launches (the last block resets it; the next launch waits
// for this grid). The sum over a token's experts runs in slot order, as moe_combine's: no float atomics, the same bits.
extern "C" __global__ void __launch_bounds__(WARPS * 32)
    moe_down_combine(T* __restrict__ out, T* __restrict__ d, const T* __restrict__ x, const T* __restrict__ w,
                     const int* __restrict__ offsets, const int* __restrict__ pairs, const int* __restrict__ active,
                     const int* __restrict__ pos, const float* __restrict__ weights, const T* __restrict__ s,
                     const T* __restrict__ shared_gate, unsigned* __restrict__ done, int tokens, int n, int k,
                     int top_k) {
  __shared__ bool last;
  PDL_ENTER();
  grouped_gemv(d, x, w, offsets, pairs, active, n, k, 0);
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(done + blockIdx.x, 1u) == gridDim.y - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  if (threadIdx.x == 0) done[blockIdx.x] = 0;
  const int f0 = blockIdx.x * GROUPS_PER_BLOCK * OUTS, width = min(GROUPS_PER_BLOCK * OUTS, n - f0);
  for (int i = threadIdx.x; i < tokens * width; i += blockDim.x) {
    const int t = i / width, h = f0 + i % width;
    out[(long long)t * n + h] = moe_combined(d, pos, weights, s, shared_gate, t, h, n, top_k);
  }
}
#endif
