// The quantized linear on tensor cores for 9..256 rows of x (16-bit compute; one QTYPE per build, as quant.cu):
// y[t, c] = sum_k x[t, k] w[c, k] for t < rows, c < n, output rows ldy apart (the part of a stacked weight whose first
// output column y points at; any bias is the caller's). The weight is decoded from its blocks in registers
// (quant_blocks.cuh's qdecode_row8, the CPU codecs' values, rounded once to the 16-bit type as quant_dequant stores
// them) straight into mma A fragments, so it is read from memory once and never written back, where the dequantize
// path wrote three times its bytes in 16 bits and read them again.
//
// mma.m16n8k16 (row.col, fp32 accumulate): A = 16 weight rows x 16 k, B = 16 k x 8 rows of x, D = 16 features x 8
// x rows, so y[t][c] = D[c][t]. Lane (g = lane / 4, q = lane % 4) holds A's rows g and g + 8 at k slots {2q, 2q + 1}
// (a0 / a1) and {2q + 8, 2q + 9} (a2 / a3), B's column g at the same slots (b0, b1), and D's rows g, g + 8 at columns
// 2q, 2q + 1. A dot product does not care which k a slot holds as long as A and B agree (fp8_gemv.cu's permutation):
// over a 32-value k-step the lane decodes values 8q .. 8q + 7 of its two weight rows (one qdecode_row8 each) and the
// first mma takes values 8q + {0, 1} in slots {2q, 2q + 1} and 8q + {2, 3} in slots {2q + 8, 2q + 9}, the second mma
// 8q + 4 .. 8q + 7 the same way; B's lane (g, q) loads the same 8 values of x's row g as one 16-byte word quad
// (words 0, 1: the first mma's b0, b1; words 2, 3: the second's). No ldmatrix: every lane reads its own 16 bytes.
//
// A CTA owns QM_BN = 32 QM_FGROUPS consecutive output features and BM = 8 NT rows of x (NT 2, 4, 8: the builds
// quant_mma_r16 / _r32 / _r64); the grid's fastest dimension is the row tile, so the CTAs that decode the same weight
// tile run together and all but the first read its blocks from L2. Its warps are QM_FGROUPS feature groups of 32
// features (two 16-row A tiles, each B fragment used twice) times QM_KSPLIT k-slices: a step of the K loop covers
// QM_KB = 32 QM_KSPLIT values, slice s taking values 32 s .. 32 s + 31 of it, and the slices' accumulators meet in
// shared memory at the end. Split K keeps the CTAs of a 4096-feature projection numerous enough to fill the GPU at
// 9-64 rows (bound by reading the weight once), split features keeps each x tile shared by several warps.
//
// x comes through two shared-memory stages by cp.async (rows past `rows` and k past k zero-filled; those rows are
// never stored), rows padded by 32 values so the two x rows a quarter-warp's 16-byte loads touch lie in distinct
// banks. The next step's weight blocks are loaded and decoded into a second set of A registers and its x tile copied
// before this step's mmas. A feature past n decodes the last row again and stores nothing. k is a multiple of 32
// (rows are whole blocks); a warp's k-slice past k takes zero weights.
#include "common.cuh"
#include "quant_blocks.cuh"
#include "attention_common.cuh"

#ifndef QM_FGROUPS
#define QM_FGROUPS 2
#endif
#ifndef QM_KSPLIT
#define QM_KSPLIT 4
#endif
#define QM_WARPS (QM_FGROUPS * QM_KSPLIT)
#define QM_BN (32 * QM_FGROUPS)
#define QM_KB (32 * QM_KSPLIT)
#define QM_LD (QM_KB + 32)
// Two 16-feature A tiles per warp.
#define QM_MT 2

static_assert((QM_KSPLIT & (QM_KSPLIT - 1)) == 0, "QM_KSPLIT: a power of two (the slices reduce pairwise)");
static_assert(QM_LD % 64 == 32, "x rows 64 bytes off a multiple of 128 (distinct banks for rows g and g + 1)");

// The A fragments of one k-step: [tile][mma][register].
typedef u32 qm_frags[QM_MT][2][4];

// Decodes values 8q .. 8q + 7 of k-step kb (32 values) of the warp's four weight rows into A fragments (zeros when
// the k-step lies past k).
__device__ __forceinline__ void qm_decode(qm_frags& a, const u8* const (&row)[QM_MT][2], int kb, int k, int q) {
  const bool inside = kb < k;
#pragma unroll
  for (int mt = 0; mt < QM_MT; mt++) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float v[8];
      if (inside) {
        qdecode_row8(row[mt][h], kb / 8 + q, v);
      } else {
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = 0.f;
      }
      // Row g (h 0) is a0 / a2, row g + 8 (h 1) a1 / a3; mma m takes values 4m .. 4m + 3.
#pragma unroll
      for (int m = 0; m < 2; m++) {
        a[mt][m][h] = pack_x2(v[4 * m], v[4 * m + 1]);
        a[mt][m][h + 2] = pack_x2(v[4 * m + 2], v[4 * m + 3]);
      }
    }
  }
}

template <int NT>
__device__ __forceinline__ void quant_mma_rows(T* __restrict__ y, const T* __restrict__ x, const u8* __restrict__ w,
                                               int rows, int n, int k, long long row_bytes, int ldy) {
  constexpr int BM = 8 * NT;
  // x tiles; at the end the slices' partial sums ([slot][tile][n-tile][register][lane] floats).
  __shared__ __align__(16) elem16_t xs[2][BM][QM_LD];
  static_assert((QM_KSPLIT / 2) * QM_FGROUPS * QM_MT * NT * 4 * 32 * 4 <= sizeof(xs), "partials fit the x stages");
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, q = lane & 3;
  const int fgroup = warp % QM_FGROUPS, slice = warp / QM_FGROUPS;
  const int m0 = blockIdx.x * BM;
  const int c0 = blockIdx.y * QM_BN + 32 * fgroup;
  const u8* row[QM_MT][2];
#pragma unroll
  for (int mt = 0; mt < QM_MT; mt++)
#pragma unroll
    for (int h = 0; h < 2; h++) row[mt][h] = w + (long long)min(c0 + 16 * mt + g + 8 * h, n - 1) * row_bytes;

  // One step's x tile: BM rows of QM_KB values in 16-byte chunks.
  constexpr int CHUNKS = QM_KB / 8;
  auto load_x = [&](int k0, int buf) {
#pragma unroll
    for (int i = tid; i < BM * CHUNKS; i += QM_WARPS * 32) {
      const int r = i / CHUNKS, kk = k0 + (i % CHUNKS) * 8;
      const bool valid = m0 + r < rows && kk < k;
      cp_async16(smem_addr(&xs[buf][r][kk - k0]), valid ? x + (long long)(m0 + r) * k + kk : x, valid);
    }
    cp_async_commit();
  };

  float acc[QM_MT][NT][4];
#pragma unroll
  for (int mt = 0; mt < QM_MT; mt++)
#pragma unroll
    for (int nt = 0; nt < NT; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[mt][nt][e] = 0.f;

  const int steps = (k + QM_KB - 1) / QM_KB;
  qm_frags a;
  qm_decode(a, row, 32 * slice, k, q);
  load_x(0, 0);
  for (int s = 0; s < steps; s++) {
    const int buf = s & 1;
    // The next step's x copies and weight loads go out before this step's mmas.
    qm_frags next;
    if (s + 1 < steps) {
      load_x((s + 1) * QM_KB, buf ^ 1);
      qm_decode(next, row, (s + 1) * QM_KB + 32 * slice, k, q);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
      const u32x4 b = *reinterpret_cast<const u32x4*>(&xs[buf][nt * 8 + g][32 * slice + 8 * q]);
#pragma unroll
      for (int mt = 0; mt < QM_MT; mt++) {
        mma_16816(acc[mt][nt], a[mt][0], b.x, b.y);
        mma_16816(acc[mt][nt], a[mt][1], b.z, b.w);
      }
    }
    __syncthreads();  // the next step's copies overwrite this stage
    if (s + 1 < steps) {
#pragma unroll
      for (int mt = 0; mt < QM_MT; mt++)
#pragma unroll
        for (int m = 0; m < 2; m++)
#pragma unroll
          for (int r = 0; r < 4; r++) a[mt][m][r] = next[mt][m][r];
    }
  }

  // The k-slices' sums, pairwise: slices [half, 2 half) hand theirs to slices [0, half) through shared memory.
  float* partial = reinterpret_cast<float*>(&xs[0][0][0]);
  constexpr int PER_WARP = QM_MT * NT * 4 * 32;
#pragma unroll
  for (int half = QM_KSPLIT / 2; half >= 1; half /= 2) {
    const bool gives = slice >= half && slice < 2 * half, takes = slice < half;
    float* mine = partial + ((slice % half) * QM_FGROUPS + fgroup) * PER_WARP + lane;
    if (gives) {
#pragma unroll
      for (int mt = 0; mt < QM_MT; mt++)
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
          for (int e = 0; e < 4; e++) mine[((mt * NT + nt) * 4 + e) * 32] = acc[mt][nt][e];
    }
    __syncthreads();
    if (takes) {
#pragma unroll
      for (int mt = 0; mt < QM_MT; mt++)
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
          for (int e = 0; e < 4; e++) acc[mt][nt][e] += mine[((mt * NT + nt) * 4 + e) * 32];
    }
    __syncthreads();
  }
  if (slice != 0) return;
  // D register e of tile (mt, nt): feature 16 mt + g + 8 (e / 2), x row 8 nt + 2q + e % 2.
#pragma unroll
  for (int mt = 0; mt < QM_MT; mt++) {
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int c = c0 + 16 * mt + g + 8 * (e >> 1);
      if (c >= n) continue;
#pragma unroll
      for (int nt = 0; nt < NT; nt++) {
        const int t = m0 + 8 * nt + 2 * q + (e & 1);
        if (t < rows) y[(long long)t * ldy + c] = from_f(acc[mt][nt][e]);
      }
    }
  }
}

// One CTA per SM declared: the 64-row build holds 64 accumulators and two k-steps' A fragments (about 150
// registers); capping it at 128 for two CTAs spilled.
#define PAGODA_QUANT_MMA(R)                                                                                      \
  extern "C" __global__ void __launch_bounds__(QM_WARPS * 32, 1)                                                \
      quant_mma_r##R(T* __restrict__ y, const T* __restrict__ x, const u8* __restrict__ w, int rows, int n, int k, \
                     long long row_bytes, int ldy) {                                                             \
    PDL_ENTER();                                                                                                 \
    quant_mma_rows<R / 8>(y, x, w, rows, n, k, row_bytes, ldy);                                                  \
  }
PAGODA_QUANT_MMA(16)
PAGODA_QUANT_MMA(32)
PAGODA_QUANT_MMA(64)
