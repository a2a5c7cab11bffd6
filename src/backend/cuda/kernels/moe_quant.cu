// Mixture-of-experts projections over experts kept in GGUF blocks (one QTYPE per build; quant_blocks.cuh and
// quant_groups.cuh decode them): a stack [E * R, k] of E experts' R rows each, as a GGUF file's ffn_*_exps holds them.
//
// moe_quant_gemv_*: a decode step's grouped GEMV, moe_gemv.cu's grid (blockIdx.y an entry of moe_group's `active`
// list, -1 past the experts with rows) on quant.cu's integer route: x's rows quantized to 8 bits per 32 values
// (quant_act.cu: xq, xs), dp4a per group, a warp per output feature and its lanes over the groups. x row of grouped
// row r: pairs[r] / gather_k (a token, for the first projection) or r (gather_k 0); at most TMAX rows an expert.
// Gated: each expert's rows are its n gate rows then its n up rows (R = 2n) and y = silu(gate) * up. y [rows, n] in
// grouped order.
//
// moe_quant_dequant: the blocks of every expert some row chose as values into out [E, R, k] (the others skipped), for
// the grouped GEMM past a decode step (moe.cu / moe_mma.cu read only chosen experts).
#include "common.cuh"
#include "quant_blocks.cuh"
#include "quant_groups.cuh"
#include "q8_act.cuh"

#define WARPS 8

template <int TMAX, bool GATED>
__device__ __forceinline__ void quant_grouped_gemv(T* __restrict__ y, const signed char* __restrict__ xq,
                                                   const q8_scale* __restrict__ xs, const u8* __restrict__ w,
                                                   const int* __restrict__ offsets, const int* __restrict__ pairs,
                                                   const int* __restrict__ active, int n, int k, long long row_bytes,
                                                   int gather_k) {
  constexpr int WROWS = GATED ? 2 : 1;
  const int e = active[blockIdx.y];
  const int c = blockIdx.x * WARPS + (threadIdx.x >> 5);
  // No barrier below: a warp past the features, or a block past the active experts, may leave alone.
  if (e < 0 || c >= n) return;
  const int lane = threadIdx.x & 31;
  const int groups = k / 32;
  const u8* rows_of[WROWS];
#pragma unroll
  for (int q = 0; q < WROWS; q++) rows_of[q] = w + ((long long)e * WROWS * n + (long long)q * n + c) * row_bytes;
  const int r0 = offsets[e], rows = min(offsets[e + 1] - r0, TMAX);
  long long src[TMAX];
#pragma unroll
  for (int t = 0; t < TMAX; t++) {
    const int r = r0 + min(t, rows - 1);  // past the expert's rows: a valid row, never summed
    src[t] = gather_k > 0 ? pairs[r] / gather_k : r;
  }
  float acc[WROWS][TMAX];
#pragma unroll
  for (int q = 0; q < WROWS; q++)
#pragma unroll
    for (int t = 0; t < TMAX; t++) acc[q][t] = 0.f;
  for (int G = lane; G < groups; G += 32) {
#pragma unroll
    for (int q = 0; q < WROWS; q++) {
      q_group g;
      qgroup(rows_of[q] + (long long)(G / QGROUPS) * QBYTES, G % QGROUPS, g);
#pragma unroll
      for (int t = 0; t < TMAX; t++) {
        if (t >= rows) break;
        const int4* p = reinterpret_cast<const int4*>(xq + src[t] * k + 32 * G);
        const int4 a = p[0], b = p[1];
        const int words[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
        acc[q][t] += q_group_dot(g, words, xs[src[t] * groups + G]);
      }
    }
  }
#pragma unroll
  for (int q = 0; q < WROWS; q++)
#pragma unroll
    for (int t = 0; t < TMAX; t++) acc[q][t] = warp_sum(acc[q][t]);
  if (lane != 0) return;
#pragma unroll
  for (int t = 0; t < TMAX; t++) {
    if (t >= rows) break;
    float v = acc[0][t];
    if (GATED) v = v / (1.f + expf(-v)) * acc[WROWS - 1][t];
    y[(long long)(r0 + t) * n + c] = from_f(v);
  }
}

// One module per type holds every build: moe_quant_gemv_t1 .. _t8 (TMAX rows an expert at most) and their gated
// twins moe_quant_gemv_gated_t1 .. _t8.
#define PAGODA_MOE_QUANT_GEMV(NAME, R, G)                                                                             \
  extern "C" __global__ void __launch_bounds__(WARPS * 32)                                                           \
      NAME(T* __restrict__ y, const signed char* __restrict__ xq, const q8_scale* __restrict__ xs,                    \
           const u8* __restrict__ w, const int* __restrict__ offsets, const int* __restrict__ pairs,                  \
           const int* __restrict__ active, int n, int k, long long row_bytes, int gather_k) {                         \
    PDL_ENTER();                                                                                                      \
    quant_grouped_gemv<R, G>(y, xq, xs, w, offsets, pairs, active, n, k, row_bytes, gather_k);                        \
  }
PAGODA_MOE_QUANT_GEMV(moe_quant_gemv_t1, 1, false)
PAGODA_MOE_QUANT_GEMV(moe_quant_gemv_t2, 2, false)
PAGODA_MOE_QUANT_GEMV(moe_quant_gemv_t4, 4, false)
PAGODA_MOE_QUANT_GEMV(moe_quant_gemv_t8, 8, false)
PAGODA_MOE_QUANT_GEMV(moe_quant_gemv_gated_t1, 1, true)
PAGODA_MOE_QUANT_GEMV(moe_quant_gemv_gated_t2, 2, true)
PAGODA_MOE_QUANT_GEMV(moe_quant_gemv_gated_t4, 4, true)
PAGODA_MOE_QUANT_GEMV(moe_quant_gemv_gated_t8, 8, true)

// A thread per 8 values: blockIdx.x over a row's chunks, blockIdx.y over (expert, a stride of its rows): expert
// blockIdx.y / y_per_expert, its rows from blockIdx.y % y_per_expert, y_per_expert apart.
extern "C" __global__ void moe_quant_dequant(T* __restrict__ out, const u8* __restrict__ w,
                                             const int* __restrict__ offsets, int rows_per_expert, int cols,
                                             long long row_bytes, int y_per_expert) {
  PDL_ENTER();
  const int e = blockIdx.y / y_per_expert;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (offsets[e + 1] == offsets[e] || c >= cols / 8) return;
  for (int r = blockIdx.y % y_per_expert; r < rows_per_expert; r += y_per_expert) {
    const long long row = (long long)e * rows_per_expert + r;
    float v[8];
    qdecode_row8(w + row * row_bytes, c, v);
    store8(out + row * cols + 8 * c, v);
  }
}
