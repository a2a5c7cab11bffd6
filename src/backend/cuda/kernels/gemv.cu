// y[t, n] = sum_k x[t, k] * w[n, k] (+ bias[n]) for the few rows of a decode step (t < rows <= TMAX): a bandwidth-bound
// matrix-vector product that reads each weight row once for all rows of x. A block of WARPS warps owns
// WARPS / SPLIT warp groups; SPLIT warps share a group's weight rows, interleaved over K (each load is a coalesced
// 512-byte run), and their partial sums meet in shared memory. A group reads ROWS weight rows together (ROWS loads
// in flight per step of the loop): ROWS consecutive output features, or with GATED the gate row c and the up row
// n + c of a packed [2n, k] gate/up weight, written once as act(gate) * up (vLLM's SiluAndMul / GeluAndMul as the
// epilogue, the activation by ACT: no [rows, 2n] round trip, no second launch). The launcher picks SPLIT / ROWS / UNROLL per shape from
// bench/gemv-sweep.ts's measurements (gemv-config.ts): on an H100 with PDL, SPLIT 4-8 with 2 rows per warp beat one
// warp per row on every Llama-3-8B shape. x (a few KB, shared by all blocks) comes through L1. Nothing is read
// before PDL_ENTER: issuing the first weight loads (to L2 or to registers) before the wait was measured slower on
// the H100 (bench/NOTES.md run 6). TMAX 16 and 32 (acc[ROWS][TMAX] in registers: up to 128 floats at ROWS 4) run only
// where the sweep measured this beating cuBLASLt (gemv-config.ts `gemvWins`): on an H100 no Llama-3-8B shape does
// (one fp32 FMA per weight element per row on the CUDA cores: 2.3-3.3x slower at 16 rows; bench/NOTES.md run 10).
// WFP8 = 1 builds gemv_fp8, the same loop over an FP8 weight (W8A16 on the CUDA cores, sm_89+): e4m3 codes with a
// float32 scale per row, applied in the epilogue before the bias. A lane's 16-byte vector is then 16 codes (the warp
// still reads 512-byte runs of each row) against two 16-byte vectors of x, read as they are (no quantization of x);
// the codes are decoded once per step, two a `cvt.rn.f16x2.e4m3x2` (exact: every e4m3 value is a half), to float for
// every row of x. GATED scales gate and up by their own rows' scales. ROPE = 1 builds gemv_rope, the packed q/k/v
// projection with RoPE and the KV cache write as its epilogue (gemv_rope.cuh): a group reads a rotation pair's two rows.
// Needs K to be a multiple of the 16-byte vector and 16-byte aligned rows (the launcher checks).
#include "common.cuh"

#ifndef TMAX
#define TMAX 1
#endif
#ifndef SPLIT
#define SPLIT 1
#endif
#ifndef GATED
#define GATED 0
#endif
#ifndef ROPE
#define ROPE 0
#endif
#if GATED || ROPE
#undef ROWS
#define ROWS 2
#endif
#ifndef ROWS
#define ROWS 1
#endif
#ifndef UNROLL
#define UNROLL 4
#endif
#ifndef WFP8
#define WFP8 0
#endif
#define WARPS 8
#define GROUPS_PER_BLOCK (WARPS / SPLIT)

#if WFP8
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 890
#error "gemv_fp8 decodes e4m3 with cvt.rn.f16x2.e4m3x2 (compute capability 8.9+)"
#endif
typedef unsigned char W;
#define VEC 16
// A weight vector's 16 codes decoded once per step, reused by every row of x.
struct WeightVec {
  float v[VEC];
  __device__ __forceinline__ void set(const uint4& u) {
    const unsigned* words = reinterpret_cast<const unsigned*>(&u);
#pragma unroll
    for (int i = 0; i < VEC / 2; i++) {
      const unsigned short two = (unsigned short)(words[i / 2] >> (16 * (i % 2)));
      unsigned h;
      asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h) : "h"(two));
      const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&h));
      v[2 * i] = f.x;
      v[2 * i + 1] = f.y;
    }
  }
  __device__ __forceinline__ float operator[](int e) const { return v[e]; }
};
#else
typedef T W;
#define VEC (16 / (int)sizeof(T))
// A weight vector read as it is, each value widened where it is used.
struct WeightVec {
  uint4 u;
  __device__ __forceinline__ void set(const uint4& w) { u = w; }
  __device__ __forceinline__ float operator[](int e) const { return to_f(reinterpret_cast<const T*>(&u)[e]); }
};
#endif
// 16-byte vectors of x per weight vector: 1, or 2 (FP8 weights against 16-bit x).
#define XVECS (VEC * (int)sizeof(T) / 16)

// A weight row's dot product in the output's units: times the row's scale (FP8 weights; ws null otherwise).
__device__ __forceinline__ float row_sum(float s, const float* __restrict__ ws, long long row) {
#if WFP8
  return s * ws[row];
#else
  return s;
#endif
}

// What a group reads and writes in the plain, gated and FP8 builds: its weight rows (ROWS consecutive output
// features from g * ROWS, or GATED's gate row g and up row n + g) and y[t, n] from their sums. ws: the FP8 weight's
// row scales (null for 16-bit weights); bias null: none.
struct LinearOut {
  T* __restrict__ y;
  const float* __restrict__ ws;
  const T* __restrict__ bias;
  int n;

  __device__ __forceinline__ bool has(int g) const { return g * (GATED ? 1 : ROWS) < n; }

  // A ragged last group re-reads the last row instead of branching in the loop (its sum is not written).
  __device__ __forceinline__ long long row(int g, int r) const {
    return GATED ? (long long)g + (long long)r * n : (long long)min(g * ROWS + r, n - 1);
  }

  // s[r] is weight row r's dot product with row t of x. The row's scale (FP8) and the bias are applied in float
  // before the one rounding, as a GEMM epilogue does.
  __device__ __forceinline__ void emit(int t, int g, const float (&s)[ROWS]) const {
#if GATED
    const float gate = row_sum(s[0], ws, g) + (bias ? to_f(bias[g]) : 0.f);
    const float up = row_sum(s[1], ws, (long long)n + g) + (bias ? to_f(bias[n + g]) : 0.f);
    y[(long long)t * n + g] = from_f(gate_act(gate) * up);
#else
#pragma unroll
    for (int r = 0; r < ROWS; r++) {
      const int c = g * ROWS + r;
      if (c < n) y[(long long)t * n + c] = from_f(row_sum(s[r], ws, c) + (bias ? to_f(bias[c]) : 0.f));
    }
#endif
  }
};

#if ROPE
#include "gemv_rope.cuh"
#endif

// WSTREAM = 1: weight vectors loaded past L1 (ld.global.nc.L1::no_allocate: no later access of the block reuses them),
// so x, read by every warp, stays there; 0: through the read-only path (__ldg). bench/gemv-sweep.ts times both.
#ifndef WSTREAM
#define WSTREAM 0
#endif
__device__ __forceinline__ uint4 load_weight(const uint4* p) {
#if WSTREAM
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
#else
  return __ldg(p);
#endif
}

// The GEMV of `rows` rows of x against the weight rows `out` names, written by its epilogue. Every kernel below runs
// it after PDL_ENTER.
template <class Out>
__device__ __forceinline__ void gemv_rows(const Out& out, const T* __restrict__ x, const W* __restrict__ w, int rows,
                                          int k) {
  __shared__ float partial[WARPS][ROWS][TMAX];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int part = warp % SPLIT;
  const int g = blockIdx.x * GROUPS_PER_BLOCK + warp / SPLIT;
  const bool active = out.has(g);
  const uint4* wr[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; r++) wr[r] = reinterpret_cast<const uint4*>(w + out.row(g, r) * k);
  const int kv = k / VEC;
  float acc[ROWS][TMAX];
#pragma unroll
  for (int r = 0; r < ROWS; r++)
#pragma unroll
    for (int t = 0; t < TMAX; t++) acc[r][t] = 0.f;
  if (active) {
    UNROLL_BY(UNROLL)
    for (int i = part * 32 + lane; i < kv; i += 32 * SPLIT) {
      uint4 wu[ROWS];
#pragma unroll
      for (int r = 0; r < ROWS; r++) wu[r] = load_weight(wr[r] + i);
      WeightVec wv[ROWS];
#pragma unroll
      for (int r = 0; r < ROWS; r++) wv[r].set(wu[r]);
#pragma unroll
      for (int t = 0; t < TMAX; t++) {
        if (t >= rows) break;
        const uint4* xp = reinterpret_cast<const uint4*>(x + (long long)t * k) + (long long)i * XVECS;
        uint4 xu[XVECS];
#pragma unroll
        for (int j = 0; j < XVECS; j++) xu[j] = xp[j];
        const T* xv = reinterpret_cast<const T*>(xu);
#pragma unroll
        for (int r = 0; r < ROWS; r++)
#pragma unroll
          for (int e = 0; e < VEC; e++) acc[r][t] += wv[r][e] * to_f(xv[e]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < ROWS; r++)
#pragma unroll
    for (int t = 0; t < TMAX; t++) acc[r][t] = warp_sum(acc[r][t]);
  if (SPLIT == 1) {
    if (lane == 0 && active) {
#pragma unroll
      for (int t = 0; t < TMAX; t++) {
        if (t >= rows) break;
        float s[ROWS];
#pragma unroll
        for (int r = 0; r < ROWS; r++) s[r] = acc[r][t];
        out.emit(t, g, s);
      }
    }
    return;
  }
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < ROWS; r++)
#pragma unroll
      for (int t = 0; t < TMAX; t++) partial[warp][r][t] = acc[r][t];
  }
  __syncthreads();
  // One thread per (group of this block, row of x) adds the SPLIT partial sums in a fixed order.
  const int q = threadIdx.x / TMAX, t = threadIdx.x % TMAX;
  const int gq = blockIdx.x * GROUPS_PER_BLOCK + q;
  if (q < GROUPS_PER_BLOCK && t < rows && out.has(gq)) {
    float s[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++) {
      s[r] = 0.f;
#pragma unroll
      for (int p = 0; p < SPLIT; p++) s[r] += partial[q * SPLIT + p][r][t];
    }
    out.emit(t, gq, s);
  }
}

#if WFP8
extern "C" __global__ void __launch_bounds__(WARPS * 32)
gemv_fp8(T* __restrict__ y, const T* __restrict__ x, const unsigned char* __restrict__ w, const float* __restrict__ ws,
         const T* __restrict__ bias, int rows, int n, int k) {
  PDL_ENTER();
  gemv_rows(LinearOut{y, ws, bias, n}, x, w, rows, k);
}
#elif ROPE
// Writes q [rows, Hq D], k and v [rows, Hk D] (what splitColumns of the plain GEMV's output gives) and the cache.
extern "C" __global__ void __launch_bounds__(WARPS * 32)
gemv_rope(T* __restrict__ q, T* __restrict__ k, T* __restrict__ v, const T* __restrict__ x, const T* __restrict__ w,
          const T* __restrict__ bias, int rows, int kdim, const int* __restrict__ positions,
          const float* __restrict__ inv_freq, int num_q_heads, int num_kv_heads, int head_dim, int rot, int neox,
          float mscale, T* __restrict__ k_cache, T* __restrict__ v_cache, const int* __restrict__ slot_mapping) {
  PDL_ENTER();
  const RopeOut out{q,           k,           v,          bias,         positions, inv_freq, k_cache, v_cache,
                    slot_mapping, num_q_heads, num_kv_heads, head_dim, rot,       neox,     mscale};
  gemv_rows(out, x, w, rows, kdim);
}
#else
extern "C" __global__ void __launch_bounds__(WARPS * 32)
gemv(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias, int rows, int n,
     int k) {
  PDL_ENTER();
  gemv_rows(LinearOut{y, nullptr, bias, n}, x, w, rows, k);
}
#endif
