// GGUF block-quantized weights (one QTYPE per build, quant_blocks.cuh decodes them): dequantization into the compute
// type (the prefill path: a persistent scratch, then cuBLASLt), two decode GEMVs that decode in registers, the
// embedding gather of a quantized table, and random blocks for --load-format dummy.
//
// The decode GEMVs. 16-bit compute takes the integer route (quant_gemv_q8, llama.cpp's mmvq): x quantized once per
// linear to 8 bits per 32 values (quant_act.cu), then dp4a over the levels packed four to a word (quant_groups.cuh),
// a step and min per 16 values: 1.1-2.2x the float route on an H100 at one row, 2.1-4.5x at four (bench/RESULTS.md).
// float32 compute keeps the float route (quant_gemv), exact x and no activation rounding, as the reference the others
// are held to: per 8-value chunk step * sum(q x) - min * sum(x), a value costing a byte permute, the exponent
// subtraction and the FMA. In both a warp owns one output feature and its lanes take consecutive chunks or groups,
// so a warp's loads cover whole blocks; x comes through L1, shared by every warp.
#include "common.cuh"
#include "quant_blocks.cuh"
#include "quant_groups.cuh"
#include "q8_act.cuh"

#define WARPS 8

// out[r, :] = the rows of blocks w[r] (row_bytes apart) as values, for r < rows; cols a multiple of QK. A thread
// per 8 values: blockIdx.x over a row's chunks, blockIdx.y over rows (strided past gridDim.y), so no thread divides
// a flat index.
extern "C" __global__ void quant_dequant(T* __restrict__ out, const u8* __restrict__ w, int rows, int cols,
                                         long long row_bytes) {
  PDL_ENTER();
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols / 8) return;
  for (int r = blockIdx.y; r < rows; r += gridDim.y) {
    float v[8];
    qdecode_row8(w + r * row_bytes, c, v);
    store8(out + (long long)r * cols + 8 * c, v);
  }
}

// A GEMV warp's epilogue: its lanes' partial sums for output feature c reduced, the bias added, and rows t < rows
// stored by lane 0 (ldy apart).
template <int TMAX>
__device__ __forceinline__ void gemv_store(T* __restrict__ y, float (&acc)[TMAX], const T* __restrict__ bias, int rows,
                                           int c, int n, int ldy) {
#pragma unroll
  for (int t = 0; t < TMAX; t++) acc[t] = warp_sum(acc[t]);
  if ((threadIdx.x & 31) == 0 && c < n) {
    const float b = bias ? to_f(bias[c]) : 0.f;
#pragma unroll
    for (int t = 0; t < TMAX; t++) {
      if (t >= rows) break;
      y[(long long)t * ldy + c] = from_f(acc[t] + b);
    }
  }
}

// y[t, c] (rows ldy apart) = sum_k x[t, k] w[c, k] (+ bias[c]; null: none) for t < rows <= TMAX and c < n: the part
// of a stacked weight whose first output column y and bias point at. One build per type holds the four widths
// (quant_gemv_t1 .. _t8: TMAX accumulators per lane), so a model's GEMVs compile once per type.
template <int TMAX>
__device__ __forceinline__ void gemv_rows(T* __restrict__ y, const T* __restrict__ x, const u8* __restrict__ w,
                                          const T* __restrict__ bias, int rows, int n, int k, long long row_bytes,
                                          int ldy) {
  const int lane = threadIdx.x & 31;
  const int c = blockIdx.x * WARPS + (threadIdx.x >> 5);
  const u8* row = w + (long long)min(c, n - 1) * row_bytes;
  const int chunks = k / 8;
  float acc[TMAX];
#pragma unroll
  for (int t = 0; t < TMAX; t++) acc[t] = 0.f;
  if (c < n) {
#pragma unroll 4
    for (int i = lane; i < chunks; i += 32) {
      q_chunk ch;
      qlevels_row8(row, i, ch);
#pragma unroll
      for (int t = 0; t < TMAX; t++) {
        if (t >= rows) break;
        float xv[8];
        load8(x + (long long)t * k + 8 * i, xv);
        float dot = 0.f, sum = 0.f;
#pragma unroll
        for (int e = 0; e < 8; e++) {
          dot += ch.q[e] * xv[e];
          if (QHAS_MIN) sum += xv[e];
        }
        acc[t] += ch.step * dot;
        if (QHAS_MIN) acc[t] -= ch.min * sum;
      }
    }
  }
  gemv_store<TMAX>(y, acc, bias, rows, c, n, ldy);
}

#define PAGODA_QUANT_GEMV(R)                                                                                          \
  extern "C" __global__ void __launch_bounds__(WARPS * 32)                                                           \
      quant_gemv_t##R(T* __restrict__ y, const T* __restrict__ x, const u8* __restrict__ w, const T* __restrict__ bias, \
                      int rows, int n, int k, long long row_bytes, int ldy) {                                        \
    PDL_ENTER();                                                                                                      \
    gemv_rows<R>(y, x, w, bias, rows, n, k, row_bytes, ldy);                                                          \
  }
PAGODA_QUANT_GEMV(1)
PAGODA_QUANT_GEMV(2)
PAGODA_QUANT_GEMV(4)
PAGODA_QUANT_GEMV(8)

// The integer route's tuning, swept by bench/quant-gemv.ts: output features per warp (x's loads shared between
// them) and the unroll of the group loop (loads in flight). The backend launches the defaults.
#ifndef Q8_ROWS
#define Q8_ROWS 1
#endif
#ifndef Q8_UNROLL
#define Q8_UNROLL 2
#endif

// The integer route (llama.cpp's mmvq; quant_groups.cuh): y[t, c] = sum over 32-value groups of the weight's levels
// dotted with x's 8-bit levels (quant_act.cu: xq [rows, k], xs [rows, k / 32]) by dp4a, scaled once a group, for
// t < rows <= TMAX and c < n, with gemv_rows' outputs. A warp owns Q8_ROWS consecutive output features, its lanes
// consecutive groups: a q4_k block takes 8 lanes, each with two 16-byte loads of levels and its own scale bytes.
template <int TMAX>
__device__ __forceinline__ void gemv_q8_rows(T* __restrict__ y, const signed char* __restrict__ xq,
                                             const q8_scale* __restrict__ xs, const u8* __restrict__ w,
                                             const T* __restrict__ bias, int rows, int n, int k, long long row_bytes,
                                             int ldy) {
  const int lane = threadIdx.x & 31;
  const int c0 = (blockIdx.x * WARPS + (threadIdx.x >> 5)) * Q8_ROWS;
  const int groups = k / 32;
  float acc[Q8_ROWS][TMAX];
#pragma unroll
  for (int r = 0; r < Q8_ROWS; r++)
#pragma unroll
    for (int t = 0; t < TMAX; t++) acc[r][t] = 0.f;
  if (c0 < n) {
    UNROLL_BY(Q8_UNROLL)
    for (int G = lane; G < groups; G += 32) {
#pragma unroll
      for (int r = 0; r < Q8_ROWS; r++) {
        // A feature past n reads the last row again and stores nothing.
        const u8* row = w + (long long)min(c0 + r, n - 1) * row_bytes;
        q_group g;
        qgroup(row + (long long)(G / QGROUPS) * QBYTES, G % QGROUPS, g);
        // x's words are loaded where they are used (the same loads for every r, which the compiler may share): held
        // for all t at once they would cost TMAX x 8 registers.
#pragma unroll
        for (int t = 0; t < TMAX; t++) {
          if (t >= rows) break;
          const int4* p = reinterpret_cast<const int4*>(xq + (long long)t * k + 32 * G);
          const int4 a = p[0], b = p[1];
          const int words[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
          acc[r][t] += q_group_dot(g, words, xs[(long long)t * groups + G]);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < Q8_ROWS; r++) gemv_store<TMAX>(y, acc[r], bias, rows, c0 + r, n, ldy);
}

#define PAGODA_QUANT_GEMV_Q8(R)                                                                                       \
  extern "C" __global__ void __launch_bounds__(WARPS * 32)                                                           \
      quant_gemv_q8_t##R(T* __restrict__ y, const signed char* __restrict__ xq, const q8_scale* __restrict__ xs,      \
                         const u8* __restrict__ w, const T* __restrict__ bias, int rows, int n, int k,                \
                         long long row_bytes, int ldy) {                                                              \
    PDL_ENTER();                                                                                                      \
    gemv_q8_rows<R>(y, xq, xs, w, bias, rows, n, k, row_bytes, ldy);                                                  \
  }
PAGODA_QUANT_GEMV_Q8(1)
PAGODA_QUANT_GEMV_Q8(2)
PAGODA_QUANT_GEMV_Q8(4)
PAGODA_QUANT_GEMV_Q8(8)

// out[t, :] = row index[t] - first of a table part of part_rows rows (a block per token; rows outside the part are
// left to the launch of the part that holds them).
extern "C" __global__ void quant_embedding(T* __restrict__ out, const u8* __restrict__ table,
                                           const int* __restrict__ index, int hidden, long long row_bytes, int first,
                                           int part_rows) {
  PDL_ENTER();
  const int r = index[blockIdx.x] - first;
  if (r < 0 || r >= part_rows) return;
  const u8* row = table + (long long)r * row_bytes;
  T* dst = out + (long long)blockIdx.x * hidden;
  for (int c = threadIdx.x; c < hidden / 8; c += blockDim.x) {
    float v[8];
    qdecode_row8(row, c, v);
    store8(dst + 8 * c, v);
  }
}

// A counter-based hash (splitmix64's finalizer): the same bytes for the same seed on every launch shape.
__device__ __forceinline__ unsigned q_hash(unsigned seed, unsigned long long i) {
  unsigned long long z = i * 0x9E3779B97F4A7C15ull + seed;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (unsigned)(z ^ (z >> 31));
}

// --load-format dummy: `blocks` random blocks, each taking its non-level bytes (scales, mins) from one of the
// pool_blocks valid blocks at pool and random bytes in [level_start, level_end), the levels (any bytes are valid
// there): src/primitives/quant/random.ts's recipe, made where the weights live. A thread per byte.
extern "C" __global__ void quant_random_blocks(u8* __restrict__ out, const u8* __restrict__ pool, long long blocks,
                                               int pool_blocks, int level_start, int level_end, unsigned seed) {
  PDL_ENTER();
  const long long total = blocks * QBYTES;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
    const long long blk = i / QBYTES;
    const int j = (int)(i - blk * QBYTES);
    const unsigned pick = q_hash(seed ^ 0x5bd1e995u, (unsigned long long)blk) % pool_blocks;
    out[i] = j >= level_start && j < level_end ? (u8)(q_hash(seed, (unsigned long long)i) >> 24)
                                               : pool[pick * QBYTES + j];
  }
}
