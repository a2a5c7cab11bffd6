// y[t, c] = (sum_k xq[t, k] wq[c, k]) * xs[t] * ws[c] (+ bias[c]) for the few rows of a decode step (t < rows <= 8)
// against an FP8 weight (e4m3 codes wq, a float32 scale ws per row), x already quantized per token to e4m3 (codes
// xq, a scale xs per row: fp8_quantize_rows, as the FP8 GEMM's activations). The products run on the FP8 tensor
// cores (mma.sync m16n8k32 e4m3, sm_89+; sm_90 runs it as e4m3 -> f16 conversions and two f16 mmas): a lane spends
// 5-30 instructions on 32 weight bytes where decoding e4m3 for float FMAs cost about four a byte, so the kernel is
// bound by memory, not by instructions.
//
// One mma: A = 16 weight rows x 32 k, B = 32 k x the 8 rows of x as its columns (columns past `rows` repeat x's last
// row and are not written: 1 to 8 rows cost the same), D = 16 x 8 float32 accumulators. The dot product does not care about the order of k, so
// each thread loads whole 16-byte vectors and the mma's k slots are permuted to match. Lane (g = lane / 4,
// q = lane % 4) holds A's rows g and g + 8 and B's column g at k slots 4q..4q+3 and 16+4q..16+4q+3 (the PTX
// fragment layout); at k-step j (64 bytes of k) the lane loads the 16 bytes at k = 64 j + 16 q of weight rows g and
// g + 8 and of x's row g. Its first 8 bytes fill the first mma's slots (bytes 0-3 -> slots 4q.., 4-7 -> 16+4q..) and
// its last 8 the second mma's, in A and B alike, so slot s of row r and slot s of column n always hold the same k.
// x's vector is loaded once per k-step and used by every tile of the warp.
//
// A block of WARPS warps owns WARPS / SPLIT warp groups; SPLIT warps share a group's tiles, interleaved over k-steps,
// and their accumulators meet in shared memory. A group holds TILES tiles of 16 weight rows: 16 TILES consecutive
// output features, or with GATED the gate rows c..c+15 and the up rows n + c..n + c + 15 of a packed [2n, k]
// gate/up weight, written once as act(gate) * up (the activation by ACT). UNROLL k-steps' loads are issued before
// their mmas. Weights stream past L1 (no_allocate), where x stays for the other blocks of the SM.
// Needs k to be a multiple of 16 and 16-byte aligned rows (the launcher checks); a tail k-step past k is zero.
#include "common.cuh"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 890
#error "fp8_gemv needs FP8 tensor cores (compute capability 8.9+)"
#endif

#ifndef SPLIT
#define SPLIT 8
#endif
#ifndef GATED
#define GATED 0
#endif
#if GATED
#undef TILES
#define TILES 2
#define OUTS 16
#else
#ifndef TILES
#define TILES 1
#endif
#define OUTS (16 * TILES)
#endif
#ifndef UNROLL
#define UNROLL 4
#endif
#define WARPS 8
#define GROUPS_PER_BLOCK (WARPS / SPLIT)

// D += A B on the FP8 tensor cores: a* = this lane's A words (rows g, g + 8, g, g + 8), b* its B words.
__device__ __forceinline__ void mma_e4m3(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                         unsigned b0, unsigned b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// 16 weight bytes that no later access of this block reuses: read past L1.
__device__ __forceinline__ uint4 load_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// One tile's two mmas over a k-step: lo / hi are weight rows g and g + 8, xv the matching bytes of x's row g.
__device__ __forceinline__ void mma_step(float (&d)[4], const uint4& lo, const uint4& hi, const uint4& xv) {
  mma_e4m3(d, lo.x, hi.x, lo.y, hi.y, xv.x, xv.y);
  mma_e4m3(d, lo.z, hi.z, lo.w, hi.w, xv.z, xv.w);
}

// The weight row holding tile `r`'s half `h` (0: rows g, 1: g + 8) of group `grp`; a ragged last group re-reads
// the last valid row instead of branching in the loop (its outputs are not written).
__device__ __forceinline__ long long weight_row(int grp, int r, int h, int g, int n) {
#if GATED
  return (long long)r * n + min(grp * 16 + g + 8 * h, n - 1);
#else
  return min(grp * OUTS + r * 16 + g + 8 * h, n - 1);
#endif
}

// Accumulator e of tile r in lane (g, q) is D[row g + 8 (e / 2)][column 2q + e % 2]: the output feature that row
// stands for, of the token 2q + e % 2, scaled and written (bias null: none). Row and token scales and the bias in
// float before the one rounding, as the FP8 GEMM's epilogue does.
__device__ __forceinline__ void emit(T* __restrict__ y, const float* __restrict__ xs, const float* __restrict__ ws,
                                     const T* __restrict__ bias, int rows, int n, int grp, int g, int q,
                                     const float (&acc)[TILES][4]) {
#pragma unroll
  for (int e = 0; e < 4; e++) {
    const int t = 2 * q + (e & 1);
    if (t >= rows) continue;
    const float s = xs[t];
#if GATED
    const int c = grp * 16 + g + 8 * (e >> 1);
    if (c >= n) continue;
    const float gate = acc[0][e] * (s * ws[c]) + (bias ? to_f(bias[c]) : 0.f);
    const float up = acc[1][e] * (s * ws[n + c]) + (bias ? to_f(bias[n + c]) : 0.f);
    y[(long long)t * n + c] = from_f(gate_act(gate) * up);
#else
#pragma unroll
    for (int r = 0; r < TILES; r++) {
      const int c = grp * OUTS + r * 16 + g + 8 * (e >> 1);
      if (c < n) y[(long long)t * n + c] = from_f(acc[r][e] * (s * ws[c]) + (bias ? to_f(bias[c]) : 0.f));
    }
#endif
  }
}

// n: output features (GATED: the weight has 2n rows); xq [rows, k] codes, xs [rows] scales.
extern "C" __global__ void __launch_bounds__(WARPS * 32)
fp8_gemv(T* __restrict__ y, const unsigned char* __restrict__ xq, const float* __restrict__ xs,
         const unsigned char* __restrict__ w, const float* __restrict__ ws, const T* __restrict__ bias, int rows,
         int n, int k) {
  __shared__ float partial[WARPS][TILES][4][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, q = lane & 3;
  const int part = warp % SPLIT;
  const int grp = blockIdx.x * GROUPS_PER_BLOCK + warp / SPLIT;
  const bool active = grp * OUTS < n;
  const int kv = k / 16, steps = (kv + 3) / 4;
  const uint4* wp[TILES][2];
#pragma unroll
  for (int r = 0; r < TILES; r++)
#pragma unroll
    for (int h = 0; h < 2; h++) wp[r][h] = reinterpret_cast<const uint4*>(w + weight_row(grp, r, h, g, n) * k);
  const uint4* xp = reinterpret_cast<const uint4*>(xq + (long long)min(g, rows - 1) * k);
  PDL_ENTER();
  float acc[TILES][4];
#pragma unroll
  for (int r = 0; r < TILES; r++)
#pragma unroll
    for (int e = 0; e < 4; e++) acc[r][e] = 0.f;
  if (active) {
    // Whole k-steps UNROLL at a time with no bounds checks, then the rest one k-step at a time.
    const int whole = kv / 4;
    int j = part;
#pragma unroll 1
    for (; j + (UNROLL - 1) * SPLIT < whole; j += UNROLL * SPLIT) {
      uint4 wv[UNROLL][TILES][2], xv[UNROLL];
#pragma unroll
      for (int u = 0; u < UNROLL; u++) {
        const int v = 4 * (j + u * SPLIT) + q;  // this lane's 16-byte vector of the rows
#pragma unroll
        for (int r = 0; r < TILES; r++)
#pragma unroll
          for (int h = 0; h < 2; h++) wv[u][r][h] = load_stream(wp[r][h] + v);
        xv[u] = __ldg(xp + v);
      }
#pragma unroll
      for (int u = 0; u < UNROLL; u++)
#pragma unroll
        for (int r = 0; r < TILES; r++) mma_step(acc[r], wv[u][r][0], wv[u][r][1], xv[u]);
    }
    const uint4 zero = make_uint4(0, 0, 0, 0);
#pragma unroll 1
    for (; j < steps; j += SPLIT) {
      const int v = 4 * j + q;
      const bool in = v < kv;  // every lane takes part in the mma, past k with zeros
      const uint4 xv = in ? __ldg(xp + v) : zero;
#pragma unroll
      for (int r = 0; r < TILES; r++)
        mma_step(acc[r], in ? load_stream(wp[r][0] + v) : zero, in ? load_stream(wp[r][1] + v) : zero, xv);
    }
  }
  if (SPLIT == 1) {
    if (active) emit(y, xs, ws, bias, rows, n, grp, g, q, acc);
    return;
  }
#pragma unroll
  for (int r = 0; r < TILES; r++)
#pragma unroll
    for (int e = 0; e < 4; e++) partial[warp][r][e][lane] = acc[r][e];
  __syncthreads();
  // The group's first warp adds the SPLIT partial sums in a fixed order and writes.
  if (part != 0 || !active) return;
#pragma unroll
  for (int r = 0; r < TILES; r++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      float s = 0.f;
#pragma unroll
      for (int p = 0; p < SPLIT; p++) s += partial[warp + p][r][e][lane];
      acc[r][e] = s;
    }
  emit(y, xs, ws, bias, rows, n, grp, g, q, acc);
}
