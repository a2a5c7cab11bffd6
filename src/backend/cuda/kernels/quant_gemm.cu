// The quantized linear past the decode GEMV's rows, on tensor cores (16-bit compute; one QTYPE per build: q8_0,
// q4_k, q5_k, q6_k): y[t, c] = sum_j x[t, j] w[c, j] for t < rows, c < n, output rows ldy apart (the part of a stacked
// weight whose first output column y points at; any bias is the caller's). Marlin's shape: a CTA owns QG_BN output
// features and BM rows of x, and decodes each weight tile ONCE into shared memory for all its rows, where
// quant_dequant wrote the whole weight in 16 bits and cuBLASLt read it back.
//
// Per K step of QG_BK = 64 values the CTA (1) has cp.async'd ahead the raw blocks of its QG_BN weight rows, a 256-value
// run of each row at a time (whole 16-byte chunks covering the run: q6_k's and q8_0's blocks are only 2-byte aligned;
// the decoder starts at the run's offset within its first chunk), two runs in a ring, and x's [BM x 64] tile, three
// stages; (2) decodes the next step's [QG_BN x 64] weight tile into the other of two 16-bit tiles, a thread per
// (row, 32-value sub-block): its levels as whole 32-bit words of bytes, one step (and min) per sub-block, then each
// value step * q - min rounded as quant_blocks.cuh's qdecode_row8 rounds it (the CPU codecs' floats, bit for bit) and
// once to the 16-bit type, as quant_dequant stores it; (3) runs mma.m16n8k16 over this step's tiles, x as A and the
// decoded weight as B (both by ldmatrix from rows padded to 144 bytes: conflict-free), fp32 accumulators in registers
// for the whole K loop. The decode of step s + 1 is interleaved with step s's mmas, a quarter per k16 slice. The
// result is thus dequantize + GEMM up to the order of the fp32 sums.
//
// Builds by BM (quant_gemm_m16 .. _m256: WM warps along rows, 8 / WM along features); more rows than BM take
// gridDim.y tiles of BM, each decoding the weight again. Split K: gridDim.x = (n / QG_BN tiles) * split, each split a
// contiguous range of the 256-value runs, writing fp32 partials to ws [split][rows][n] for quant_gemm_reduce (a fixed
// order: deterministic). k is a multiple of 256; a feature past n decodes row n - 1 again and stores nothing.
#include "common.cuh"
#include "quant_gemm_decode.cuh"
#include "attention_common.cuh"

#define QG_BN 128
#define QG_BK 64
#define QG_THREADS 256
// Row stride of the x and decoded tiles in elements (144 bytes: eight rows of an ldmatrix hit distinct banks).
#define QG_LD (QG_BK + 8)
#define QG_X_STAGES 3
// Raw ring row stride: an odd number of 16-byte chunks (a word stride of 4 mod 8), so the decoders' word loads from
// 16 rows of a warp fall in 8 distinct bank groups (q6_k's 14 chunks would put rows 4 apart on the same banks).
#define QG_RAW_LD (16 * (QG_RUN_CHUNKS | 1))
#define QG_RAW_STAGES 2
#define QG_STEPS_PER_RUN (QG_RUN / QG_BK)

static_assert(QG_THREADS == 2 * QG_BN, "a decoding thread per weight row and 32-value half of a step");

// 16 bytes global -> shared, of which the first `bytes` (0..16) are read and the rest zero-filled.
__device__ __forceinline__ void qg_cp16(u32 dst, const void* src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}

// Values 8j .. 8j + 7 of a prepared sub-block, rounded to the 16-bit type (as quant_dequant stores them), in pairs.
__device__ __forceinline__ uint4 qg_convert8(const qg_sub& s, int j) {
  float f[8];
  qg_values8(s, j, f);
  return make_uint4(pack_x2(f[0], f[1]), pack_x2(f[2], f[3]), pack_x2(f[4], f[5]), pack_x2(f[6], f[7]));
}

// Where this CTA works: its first output feature, first row, and its range of 256-value runs.
struct qg_place {
  int n0, m0, run0, runs, split_index;
};
__device__ __forceinline__ qg_place qg_where(int n, int k, int split, int bm) {
  const int tiles = (n + QG_BN - 1) / QG_BN;
  const int tile = blockIdx.x % tiles, part = blockIdx.x / tiles;
  const int total = k / QG_RUN;
  const int run0 = part * total / split, run1 = (part + 1) * total / split;
  return {tile * QG_BN, (int)blockIdx.y * bm, run0, run1 - run0, part};
}

// Byte offset of row r's run `run` within its first 16-byte chunk (the part starts 256-byte aligned).
__device__ __forceinline__ int qg_offset(int r, int run, long long row_bytes) {
  return (int)(((long long)r * row_bytes + (long long)run * QG_RUN_BYTES) & 15);
}

// The raw chunks of run `run` of the CTA's QG_BN rows into a ring slot (rows past n: row n - 1 again; bytes past
// the part's end are zero-filled, never read).
__device__ __forceinline__ void qg_load_raw(u8* slot, const u8* __restrict__ w, int n0, int n, int run,
                                            long long row_bytes) {
  const long long end = (long long)n * row_bytes;
  for (int i = threadIdx.x; i < QG_BN * QG_RUN_CHUNKS; i += QG_THREADS) {
    const int row = i / QG_RUN_CHUNKS, ch = i % QG_RUN_CHUNKS;
    const long long start = (long long)min(n0 + row, n - 1) * row_bytes + (long long)run * QG_RUN_BYTES;
    const long long at = (start & ~15ll) + 16 * ch;
    const long long left = end - at;
    qg_cp16(smem_addr(slot + row * QG_RAW_LD + 16 * ch), w + (left > 0 ? at : 0), left >= 16 ? 16 : left > 0 ? (int)left : 0);
  }
}

extern __shared__ __align__(16) unsigned char qg_smem[];

// Shared memory: x stages [3][BM][QG_LD], decoded tiles [2][QG_BN][QG_LD] (16-bit), raw ring [2][QG_BN][QG_RAW_LD]
// and 16 bytes past it (qg_words reads one word beyond its last). src/backend/cuda/quant-gemm.ts sizes it the same.
template <int BM>
__device__ __forceinline__ u8* qg_raw_ring() {
  return qg_smem + 2 * (QG_X_STAGES * BM + 2 * QG_BN) * QG_LD;
}

template <int BM, int WM>
__device__ __forceinline__ void quant_gemm_tile(T* __restrict__ y, float* __restrict__ ws, const T* __restrict__ x,
                                                const u8* __restrict__ w, int rows, int n, int k, long long row_bytes,
                                                int ldy, int split) {
  constexpr int WN = 8 / WM, WTM = BM / WM, WTN = QG_BN / WN, MT = WTM / 16, NT = WTN / 8;
  static_assert(MT >= 1 && WTM % 16 == 0 && NT % 2 == 0, "whole m16 tiles and pairs of n8 tiles per warp");
  elem16_t* xs = reinterpret_cast<elem16_t*>(qg_smem);
  elem16_t* dec = xs + QG_X_STAGES * BM * QG_LD;
  u8* raw = qg_raw_ring<BM>();
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp % WM, wn = warp / WM;
  const qg_place at = qg_where(n, k, split, BM);
  const int steps = at.runs * QG_STEPS_PER_RUN;
  const int kbase = at.run0 * QG_RUN;

  auto load_x = [&](int s) {
    elem16_t* dst = xs + (s % QG_X_STAGES) * BM * QG_LD;
    for (int i = tid; i < BM * (QG_BK / 8); i += QG_THREADS) {
      const int r = i / (QG_BK / 8), ch = i % (QG_BK / 8);
      const bool valid = at.m0 + r < rows;
      const T* src = valid ? x + (long long)(at.m0 + r) * k + kbase + s * QG_BK + ch * 8 : x;
      cp_async16(smem_addr(dst + r * QG_LD + ch * 8), src, valid);
    }
  };
  // Group g: x's step g, and run r's blocks at g = 4r - 2, three steps before their first decode (run 0's went
  // out before the PDL wait, in group 0).
  auto issue = [&](int g) {
    if (g < steps) load_x(g);
    const int r = (g + 2) / QG_STEPS_PER_RUN;
    if (g % QG_STEPS_PER_RUN == QG_STEPS_PER_RUN - 2 && r < at.runs)
      qg_load_raw(raw + (r % QG_RAW_STAGES) * QG_BN * QG_RAW_LD, w, at.n0, n, at.run0 + r, row_bytes);
    cp_async_commit();
  };

  // The decoding thread's weight row and 32-value half of each step.
  const int drow = tid >> 1, dhalf = tid & 1;
  const int drow_n = min(at.n0 + drow, n - 1);
  auto prepare = [&](int s, qg_sub& sub) {
    const int r = s / QG_STEPS_PER_RUN;
    const u8* p = raw + (r % QG_RAW_STAGES) * QG_BN * QG_RAW_LD + drow * QG_RAW_LD +
                  qg_offset(drow_n, at.run0 + r, row_bytes);
    qg_prepare(p, 2 * (s % QG_STEPS_PER_RUN) + dhalf, sub);
  };
  auto dec_piece = [&](int s, int j) {
    return reinterpret_cast<uint4*>(dec + (s & 1) * QG_BN * QG_LD + drow * QG_LD + 32 * dhalf + 8 * j);
  };

  float acc[MT][NT][4];
#pragma unroll
  for (int mt = 0; mt < MT; mt++)
#pragma unroll
    for (int nt = 0; nt < NT; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[mt][nt][e] = 0.f;

  issue(0);
  issue(1);
  cp_async_wait<1>();
  __syncthreads();
  {
    qg_sub sub;
    prepare(0, sub);
#pragma unroll
    for (int j = 0; j < 4; j++) *dec_piece(0, j) = qg_convert8(sub, j);
  }

  const int brow = (lane & 7) + ((lane >> 4) << 3), bcol = ((lane >> 3) & 1) << 3;
  for (int s = 0; s < steps; s++) {
    cp_async_wait<1>();
    __syncthreads();  // step s's x and decoded tiles visible; step s - 1's stages free
    issue(s + 2);
    const bool next = s + 1 < steps;
    qg_sub sub;
    if (next) prepare(s + 1, sub);
    const elem16_t* xt = xs + (s % QG_X_STAGES) * BM * QG_LD + (wm * WTM) * QG_LD;
    const elem16_t* wt = dec + (s & 1) * QG_BN * QG_LD + (wn * WTN) * QG_LD;
#pragma unroll
    for (int kk = 0; kk < QG_BK / 16; kk++) {
      u32 b[NT / 2][4];
#pragma unroll
      for (int nn = 0; nn < NT / 2; nn++) ldsm_x4(b[nn], smem_addr(wt + (nn * 16 + brow) * QG_LD + kk * 16 + bcol));
#pragma unroll
      for (int mt = 0; mt < MT; mt++) {
        u32 a[4];
        load_a_fragment(a, xt + mt * 16 * QG_LD, QG_LD, kk, lane);
#pragma unroll
        for (int nn = 0; nn < NT / 2; nn++) {
          mma_16816(acc[mt][2 * nn], a, b[nn][0], b[nn][1]);
          mma_16816(acc[mt][2 * nn + 1], a, b[nn][2], b[nn][3]);
        }
      }
      // A quarter of the next step's decode beside this slice's mmas.
      if (next) *dec_piece(s + 1, kk) = qg_convert8(sub, kk);
    }
  }

  // D register e of tile (mt, nt): row 16 mt + lane / 4 + 8 (e / 2), feature 8 nt + 2 (lane % 4) + e % 2.
#pragma unroll
  for (int mt = 0; mt < MT; mt++) {
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int t = at.m0 + wm * WTM + mt * 16 + (lane >> 2) + 8 * (e >> 1);
      if (t >= rows) continue;
#pragma unroll
      for (int nt = 0; nt < NT; nt++) {
        const int c = at.n0 + wn * WTN + nt * 8 + 2 * (lane & 3) + (e & 1);
        if (c >= n) continue;
        if (split == 1)
          y[(long long)t * ldy + c] = from_f(acc[mt][nt][e]);
        else
          ws[((long long)at.split_index * rows + t) * n + c] = acc[mt][nt][e];
      }
    }
  }
}

// The entry per row tile: the first run's weight blocks requested before the wait on the previous kernel (weights
// are never written), then the tile. MINB: CTAs per SM the registers are bounded for (two for the small tiles).
#define PAGODA_QUANT_GEMM(BM, WM, MINB)                                                                           \
  extern "C" __global__ void __launch_bounds__(QG_THREADS, MINB)                                                 \
      quant_gemm_m##BM(T* __restrict__ y, float* __restrict__ ws, const T* __restrict__ x,                        \
                       const u8* __restrict__ w, int rows, int n, int k, long long row_bytes, int ldy, int split) { \
    const qg_place at = qg_where(n, k, split, BM);                                                                \
    qg_load_raw(qg_raw_ring<BM>(), w, at.n0, n, at.run0, row_bytes);                                              \
    PDL_ENTER();                                                                                                  \
    quant_gemm_tile<BM, WM>(y, ws, x, w, rows, n, k, row_bytes, ldy, split);                                      \
  }
PAGODA_QUANT_GEMM(16, 1, 2)
PAGODA_QUANT_GEMM(32, 2, 2)
PAGODA_QUANT_GEMM(64, 4, 2)
PAGODA_QUANT_GEMM(128, 4, 1)
PAGODA_QUANT_GEMM(256, 4, 1)

// y[t, c] = the split partials' sum, in split order, rounded once to the storage type (blockIdx.y: the row).
extern "C" __global__ void quant_gemm_reduce(T* __restrict__ y, const float* __restrict__ ws, int rows, int n,
                                             int ldy, int split) {
  PDL_ENTER();
  const int c = blockIdx.x * blockDim.x + threadIdx.x, t = blockIdx.y;
  if (c >= n) return;
  float sum = 0.f;
  for (int p = 0; p < split; p++) sum += ws[((long long)p * rows + t) * n + c];
  y[(long long)t * ldy + c] = from_f(sum);
}
