// The mixture-of-experts grouped GEMM on tensor cores (16-bit storage; moe.cu's tile kernel serves float32 and shapes
// whose k is not a whole number of 16-byte chunks): y[r, :] = x[src(r), :] w[e(r)]^T over the grouped rows, with
// moe_gemm's arguments and tile order (blockIdx.y counts tiles expert by expert, each expert's rows padded to whole
// tiles, so a tile reads only its expert's weights and the grid depends on the row count alone).
//
// A CTA owns MMA_BM grouped rows of one expert x MMA_BN output columns; its 4 warps split them as 16-row by
// WARP_BN-column tiles. MMA_BM 64: a warp per 16 rows, all columns. MMA_BM 16 (with a deeper ring), the build for a
// large decode step whose experts have a few rows each: a warp per 16 columns, so a tile pads its rows to 16, not 64,
// and keeps more weight loads in flight. K advances MMA_BK at a time through an MMA_STAGES-deep cp.async ring of the
// gathered x rows and the expert's weight rows, both [rows][k] in shared memory (padded by 8 elements so ldmatrix rows
// hit distinct banks); the product is the flash kernels' Q K^T step (attention_common.cuh `qk_tile`), fp32
// accumulate. Every build adds each output's products in the same order: the same bits.
#include "attention_common.cuh"

#ifndef MMA_BM
#define MMA_BM 64
#endif
#ifndef MMA_STAGES
#define MMA_STAGES 2
#endif
#define MMA_BN 64
#define MMA_BK 64
#define MMA_WARPS 4
#define MMA_LD (MMA_BK + 8)
#define WARPS_M (MMA_BM / 16)
#define WARP_BN (MMA_BN * WARPS_M / MMA_WARPS)

extern "C" __global__ void __launch_bounds__(MMA_WARPS * 32)
    moe_gemm_mma(elem16_t* __restrict__ y, const elem16_t* __restrict__ x, const elem16_t* __restrict__ w,
                 const int* __restrict__ offsets, const int* __restrict__ pairs, int rows, int experts, int n, int k,
                 int gather_k) {
  PDL_WAIT();
  __shared__ __align__(16) elem16_t xs[MMA_STAGES][MMA_BM][MMA_LD];
  __shared__ __align__(16) elem16_t ws[MMA_STAGES][MMA_BN][MMA_LD];
  __shared__ int src[MMA_BM];
  int tile = blockIdx.y, e = 0, r0 = 0, r1 = 0;
  for (; e < experts; e++) {
    const int begin = offsets[e], count = offsets[e + 1] - begin;
    const int tiles = (count + MMA_BM - 1) / MMA_BM;
    if (tile < tiles) {
      r0 = begin + tile * MMA_BM;
      r1 = min(r0 + MMA_BM, begin + count);
      break;
    }
    tile -= tiles;
  }
  PDL_LAUNCH_DEPENDENTS();
  if (e == experts || r0 >= rows) return;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp % WARPS_M, wn = warp / WARPS_M;
  const int c0 = blockIdx.x * MMA_BN;
  if (tid < MMA_BM) {
    const int r = r0 + tid;
    src[tid] = r < r1 ? (gather_k > 0 ? pairs[r] / gather_k : r) : -1;
  }
  __syncthreads();
  const elem16_t* we = w + (long long)e * n * k;
  // One K step: MMA_BM x rows and MMA_BN weight rows of MMA_BK elements, in 16-byte chunks (zero past the ends).
  constexpr int CHUNKS = MMA_BK / 8;
  auto load = [&](int k0, int buf) {
#pragma unroll
    for (int i = tid; i < MMA_BM * CHUNKS; i += MMA_WARPS * 32) {
      const int r = i / CHUNKS, kk = k0 + (i % CHUNKS) * 8;
      const int s = src[r];
      const bool valid = s >= 0 && kk < k;
      cp_async16(smem_addr(&xs[buf][r][kk - k0]), valid ? x + (long long)s * k + kk : x, valid);
    }
#pragma unroll
    for (int i = tid; i < MMA_BN * CHUNKS; i += MMA_WARPS * 32) {
      const int c = i / CHUNKS, kk = k0 + (i % CHUNKS) * 8;
      const bool valid = c0 + c < n && kk < k;
      cp_async16(smem_addr(&ws[buf][c][kk - k0]), valid ? we + (long long)(c0 + c) * k + kk : we, valid);
    }
  };
  float acc[1][WARP_BN / 8][4] = {};
  const int steps = (k + MMA_BK - 1) / MMA_BK;
  // Every iteration commits one group (empty past the last step), so waiting for all but the newest MMA_STAGES - 1
  // means step t has landed.
#pragma unroll
  for (int t = 0; t < MMA_STAGES - 1; t++) {
    if (t < steps) load(t * MMA_BK, t);
    cp_async_commit();
  }
  for (int t = 0; t < steps; t++) {
    const int ahead = t + MMA_STAGES - 1;
    if (ahead < steps) load(ahead * MMA_BK, ahead % MMA_STAGES);  // the buffer step t - 1 read
    cp_async_commit();
    cp_async_wait<MMA_STAGES - 1>();
    __syncthreads();
    const int buf = t % MMA_STAGES;
    qk_tile<MMA_BK, WARP_BN / 16, 1>(
        acc, [&](int, int kk, u32(&a)[4]) { load_a_fragment(a, &xs[buf][wm * 16][0], MMA_LD, kk, lane); },
        &ws[buf][wn * WARP_BN][0], MMA_LD, lane);
    __syncthreads();  // the next step's copies overwrite this buffer
  }
  // Accumulator j holds rows g and g + 8 of the warp's 16, columns j * 8 + 2 * (lane % 4) and the next.
  const int g = lane >> 2, col = c0 + wn * WARP_BN + 2 * (lane & 3);
#pragma unroll
  for (int half = 0; half < 2; half++) {
    const int r = r0 + wm * 16 + g + 8 * half;
    if (r >= r1) continue;
#pragma unroll
    for (int j = 0; j < WARP_BN / 8; j++) {
      const int c = col + j * 8;
      if (c < n) y[(long long)r * n + c] = to_elem16(acc[0][j][2 * half]);
      if (c + 1 < n) y[(long long)r * n + c + 1] = to_elem16(acc[0][j][2 * half + 1]);
    }
  }
}
