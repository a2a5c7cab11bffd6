// Device helpers shared by flash_prefill.cu and paged_decode.cu: tensor-core fragments (mma.sync m16n8k16, ldmatrix),
// cp.async 16-byte copies and paged K/V row addressing. Header-free so NVRTC needs no include paths.
//
// PAGODA_DTYPE (the define common.cuh reads) picks the 16-bit storage of Q, K, V and O: 1 = float16, 2 = bfloat16
// (the default). Only the fp32 -> 16-bit packing and the mma's operand type differ; float32 storage has no
// tensor-core path here (the backend keeps kernels/attention.cu for it).
//
// PAGODA_KV_QUANT (kv_quant.cuh) picks the cache's stored form: 0 the 16-bit type; 1 fp8, 2 q8_0, whose tiles are
// copied as bytes and dequantized into 16-bit tiles in shared memory before the tensor-core math (dequant_tile).
// Over a quantized cache the tile math runs in float16 whatever the storage type (ATTN_TILE_F16): every e4m3 value
// and every int8 is exact in float16 (sm_89+ converts two e4m3 in one instruction, two int8 take a byte permute and a
// subtraction), and a q8_0 value, int8 x its half scale, is rounded once; Q is rounded to float16 once in shared
// memory (q_tile_to_f16; exact for |q| in [2^-14, 65504], larger values saturate) and P to float16 (3 more bits than
// bfloat16); accumulation stays fp32 and O is stored in the storage type.
#pragma once
#include "kv_quant.cuh"
#include "pdl.cuh"

#ifndef PAGODA_DTYPE
#define PAGODA_DTYPE 2
#endif
#if PAGODA_DTYPE == 1
#define ATTN_CVT_X2 "cvt.rn.f16x2.f32"
#elif PAGODA_DTYPE == 2
#define ATTN_CVT_X2 "cvt.rn.bf16x2.f32"
#else
#error "the tensor-core attention kernels need 16-bit storage: PAGODA_DTYPE 1 (float16) or 2 (bfloat16)"
#endif
#define ATTN_TILE_F16 (PAGODA_DTYPE == 1 || PAGODA_KV_QUANT != 0)
#if ATTN_TILE_F16
#define ATTN_TILE_CVT_X2 "cvt.rn.satfinite.f16x2.f32"
#define ATTN_MMA_16816 "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"
#else
#define ATTN_TILE_CVT_X2 "cvt.rn.bf16x2.f32"
#define ATTN_MMA_16816 "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"
#endif

typedef unsigned short elem16_t;  // raw bits of one stored element (float16 or bfloat16)
typedef unsigned int u32;

// One stored element of the KV cache: the 16-bit type, or a byte of a quantized cache.
#if PAGODA_KV_QUANT == 0
typedef elem16_t kv_t;
#else
typedef unsigned char kv_t;
#endif
constexpr bool kKvQuant = PAGODA_KV_QUANT != 0;
constexpr int kKvBytes = sizeof(kv_t);
// Bytes of one head's q8_0 scales in a slot (D / 32 halves); 0 for the other forms, which have none.
template <int D>
__host__ __device__ constexpr int kv_scale_bytes() {
  return PAGODA_KV_QUANT == KV_Q8_0 ? D / KV_Q8_BLOCK * 2 : 0;
}

#define ATTN_NEG_INF (__int_as_float(0xff800000))
#define ATTN_LN2 0.6931471805599453f

__device__ __forceinline__ u32 smem_addr(const void* p) { return (u32)__cvta_generic_to_shared(p); }

__host__ __device__ constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Packs two floats to two stored elements (round to nearest even); `lo` lands in the low half, as the mma fragments
// expect.
__device__ __forceinline__ u32 pack_x2(float lo, float hi) {
  u32 r;
  asm(ATTN_CVT_X2 " %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// Two floats packed as the tile math's 16-bit type (pack_x2's, or float16 over an fp8 cache).
__device__ __forceinline__ u32 pack_tile_x2(float lo, float hi) {
  u32 r;
  asm(ATTN_TILE_CVT_X2 " %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// One float rounded to a stored element.
__device__ __forceinline__ elem16_t to_elem16(float x) { return (elem16_t)(pack_x2(x, 0.f) & 0xffffu); }

// A stored element as float.
__device__ __forceinline__ float elem16_to_f(elem16_t e) {
#if PAGODA_DTYPE == 1
  return half_bits_to_f(e);
#else
  return __uint_as_float((u32)e << 16);
#endif
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// 16-byte global->shared copy; when !valid the destination is zero-filled and nothing is read.
__device__ __forceinline__ void cp_async16(u32 dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
// 4-byte global->shared copy (through L1), zero-filled when !valid.
__device__ __forceinline__ void cp_async4(u32 dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 4 : 0));
}
// N-byte (4, 8 or 16) global->shared copy through L1, zero-filled when !valid.
template <int N>
__device__ __forceinline__ void cp_async_ca(u32 dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(src), "n"(N), "r"(valid ? N : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_trans(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// c (16x8 f32) += a (16x16, row) * b (16x8, col), a and b in the tile math's 16-bit type.
__device__ __forceinline__ void mma_16816(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
  asm(ATTN_MMA_16816 " {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Soft-capped raw scores (Gemma 2): s becomes (cap / scale) * tanh(s * scale / cap), so that online_softmax's scale
// turns it into cap * tanh(scale * s / cap). Runs before masking (which writes -inf); softcap <= 0 leaves s alone.
template <int NT>
__device__ __forceinline__ void softcap_scores(float (&s)[NT][4], float softcap, float scale_log2) {
  if (softcap <= 0.f) return;
  const float scale = scale_log2 * ATTN_LN2;
  const float in = scale / softcap, out = softcap / scale;
#pragma unroll
  for (int j = 0; j < NT; j++)
#pragma unroll
    for (int e = 0; e < 4; e++) s[j][e] = out * tanhf(s[j][e] * in);
}

// Online-softmax step of a 16-row warp tile held as mma accumulators: s[NT][4] raw scores (masked entries are -inf),
// rows g (regs 0,1) and g+8 (regs 2,3). m is in log2 units (scores times scale*log2e); l holds this thread's partial
// row sums. On return s holds the probabilities and alpha each row's factor for the output accumulated so far.
template <int NT>
__device__ __forceinline__ void softmax_rows(float (&s)[NT][4], float (&m)[2], float (&l)[2], float scale_log2,
                                             float (&alpha)[2]) {
#pragma unroll
  for (int i = 0; i < 2; i++) {
    float mx = ATTN_NEG_INF;
#pragma unroll
    for (int j = 0; j < NT; j++) mx = fmaxf(mx, fmaxf(s[j][2 * i], s[j][2 * i + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m[i], mx * scale_log2);
    const float base = m_new == ATTN_NEG_INF ? 0.f : m_new;
    alpha[i] = fast_exp2(m[i] - base);
    m[i] = m_new;
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < NT; j++) {
      s[j][2 * i] = fast_exp2(fmaf(s[j][2 * i], scale_log2, -base));
      s[j][2 * i + 1] = fast_exp2(fmaf(s[j][2 * i + 1], scale_log2, -base));
      sum += s[j][2 * i] + s[j][2 * i + 1];
    }
    l[i] = l[i] * alpha[i] + sum;
  }
}

// Scales rows g and g+8 of the output accumulators by softmax_rows' alpha.
template <int DT>
__device__ __forceinline__ void rescale_rows(float (&o)[DT][4], const float (&alpha)[2]) {
#pragma unroll
  for (int d = 0; d < DT; d++) {
    o[d][0] *= alpha[0];
    o[d][1] *= alpha[0];
    o[d][2] *= alpha[1];
    o[d][3] *= alpha[1];
  }
}

// softmax_rows, then the output rescaled at once.
template <int NT, int DT>
__device__ __forceinline__ void online_softmax(float (&s)[NT][4], float (&o)[DT][4], float (&m)[2], float (&l)[2],
                                               float scale_log2) {
  float alpha[2];
  softmax_rows(s, m, l, scale_log2, alpha);
  rescale_rows(o, alpha);
}

// S (MT*16 x 16*NN) += Q * K^T with K rows in shared memory (row stride `ld` elements). Each K fragment is loaded
// once and used for the warp's MT row tiles; q_frag(mt, kk, a) supplies Q's A fragment (registers or ldmatrix).
template <int D, int NN, int MT, class QFrag>
__device__ __forceinline__ void qk_tile(float (&s)[MT][2 * NN][4], QFrag&& q_frag, const elem16_t* k_smem, int ld,
                                        int lane) {
  const int row = (lane & 7) + ((lane >> 4) << 3);
  const int col = ((lane >> 3) & 1) << 3;
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
    u32 a[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) q_frag(mt, kk, a[mt]);
#pragma unroll
    for (int nn = 0; nn < NN; nn++) {
      u32 b[4];
      ldsm_x4(b, smem_addr(k_smem + (nn * 16 + row) * ld + kk * 16 + col));
#pragma unroll
      for (int mt = 0; mt < MT; mt++) {
        mma_16816(s[mt][2 * nn], a[mt], b[0], b[1]);
        mma_16816(s[mt][2 * nn + 1], a[mt], b[2], b[3]);
      }
    }
  }
}

// O (MT*16 x D) += P (probabilities in s) * V, V rows in shared memory with row stride `ld`; each V fragment is
// loaded once for the MT row tiles.
template <int D, int NN, int MT>
__device__ __forceinline__ void pv_tile(float (&o)[MT][D / 8][4], const float (&s)[MT][2 * NN][4],
                                        const elem16_t* v_smem, int ld, int lane) {
  const int row = (lane & 7) + (((lane >> 3) & 1) << 3);
  const int col = (lane >> 4) << 3;
#pragma unroll
  for (int kk = 0; kk < NN; kk++) {
    u32 a[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
      a[mt][0] = pack_tile_x2(s[mt][2 * kk][0], s[mt][2 * kk][1]);
      a[mt][1] = pack_tile_x2(s[mt][2 * kk][2], s[mt][2 * kk][3]);
      a[mt][2] = pack_tile_x2(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
      a[mt][3] = pack_tile_x2(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
    }
#pragma unroll
    for (int dd = 0; dd < D / 16; dd++) {
      u32 b[4];
      ldsm_x4_trans(b, smem_addr(v_smem + (kk * 16 + row) * ld + dd * 16 + col));
#pragma unroll
      for (int mt = 0; mt < MT; mt++) {
        mma_16816(o[mt][2 * dd], a[mt], b[0], b[1]);
        mma_16816(o[mt][2 * dd + 1], a[mt], b[2], b[3]);
      }
    }
  }
}

// A fragment of the 16 x 16 tile at (row 0, column kk*16) of a row-major 16-bit matrix in shared memory.
__device__ __forceinline__ void load_a_fragment(u32 (&a)[4], const elem16_t* smem, int ld, int kk, int lane) {
  ldsm_x4(a, smem_addr(smem + (lane & 15) * ld + kk * 16 + ((lane >> 4) << 3)));
}

// 16 bytes as four words, for 128-bit shared-memory loads and stores.
struct __align__(16) u32x4 {
  u32 x, y, z, w;
};

// The low (H = 0) or high (H = 1) two e4m3 bytes of w as float16 values, exactly (the lower byte in the low half);
// NaN bytes (an unwritten, poisoned slot) give NaN. Before sm_89 (no e4m3 conversion): kv_codec.cuh's bit move
// (value x 2^-8) times 2^8, exact.
template <int H>
__device__ __forceinline__ u32 fp8x2_to_f16x2(u32 w) {
  u32 r;
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 890
  if constexpr (H == 0) {
    asm("{\n .reg .b16 lo, hi;\n mov.b32 {lo, hi}, %1;\n cvt.rn.f16x2.e4m3x2 %0, lo;\n}" : "=r"(r) : "r"(w));
  } else {
    asm("{\n .reg .b16 lo, hi;\n mov.b32 {lo, hi}, %1;\n cvt.rn.f16x2.e4m3x2 %0, hi;\n}" : "=r"(r) : "r"(w));
  }
#else
  const u32 two = (w >> (16 * H)) & 0xffffu;
  asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(fp8x2_to_h2bits(two)), "r"(0x5c005c00u));
  if ((two & 0x7fu) == 0x7fu) r |= 0x7fffu;
  if ((two & 0x7f00u) == 0x7f00u) r |= 0x7fff0000u;
#endif
  return r;
}

// Bytes 2H, 2H + 1 of w as int8 values in a float16 pair, exactly: each byte (sign bit flipped, so 0..255) under the
// exponent of 1024 (0x64), minus 1024 + 128.
template <int H>
__device__ __forceinline__ u32 s8x2_to_f16x2(u32 w) {
  u32 r;
  const u32 biased = __byte_perm(w ^ 0x80808080u, 0x64646464u, H ? 0x4342 : 0x4140);
  asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(biased), "r"(0x64806480u));
  return r;
}

// What the kernels multiply raw scores (K's factor) and outputs (V's) by for a quantized cache's tiles: an fp8 tile
// holds the e4m3 values, so the layer's scale is applied once, to the fp32 scores and O, instead of to every value;
// a q8_0 tile holds the values themselves.
__device__ __forceinline__ float kv_tile_factor(float layer_scale) {
  return PAGODA_KV_QUANT == KV_FP8 ? layer_scale : 1.f;
}

// Whether a query tile loaded in the storage type must be rounded to the tile math's (quantized cache, bfloat16).
constexpr bool kQTileToF16 = PAGODA_KV_QUANT != 0 && PAGODA_DTYPE == 2;
// `count` bfloat16 elements of a query tile in shared memory rounded to float16 in place, thread t of N taking every
// N-th pair; callers sync before and after.
__device__ __forceinline__ void q_tile_to_f16(elem16_t* q, int count, int t, int n) {
  u32* pairs = reinterpret_cast<u32*>(q);
  for (int i = t; i < count / 2; i += n) {
    const u32 w = pairs[i];
    pairs[i] = pack_tile_x2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
  }
}

// Dequantizes ROWS rows of a quantized K or V tile in shared memory (D bytes a row at stride LDB, and for q8_0 each
// row's D / 32 half scales, packed) into 16-bit rows at stride LD. fp8: each value in float16, exactly (the scale is
// kv_tile_factor's); q8_0: int8 x the row's scale of its 32 values, rounded to float16. Thread t of N takes every
// N-th 16-value chunk (head size 80: five a row, so the last round's surplus threads stop).
template <int D, int ROWS, int LDB, int LD, int N>
__device__ __forceinline__ void dequant_tile(elem16_t* dst, const unsigned char* src, const unsigned short* scales,
                                             int t) {
  constexpr int CH = D / 16;
  static_assert(PAGODA_KV_QUANT != 0, "only a quantized cache is dequantized");
  static_assert(PAGODA_KV_QUANT != KV_Q8_0 || D % 64 == 0, "q8_0 tiles hold whole 64-value heads (4, 8, 16 scale bytes)");
#pragma unroll
  for (int i = 0; i < ceil_div(ROWS * CH, N); i++) {
    const int c = t + i * N;
    if ((ROWS * CH) % N != 0 && c >= ROWS * CH) break;
    const int r = c / CH, ch = c % CH;
    const u32x4 raw = *reinterpret_cast<const u32x4*>(src + r * LDB + ch * 16);
    const u32 w[4] = {raw.x, raw.y, raw.z, raw.w};
    u32 out[8];
#if PAGODA_KV_QUANT == KV_FP8
#pragma unroll
    for (int j = 0; j < 4; j++) {
      out[2 * j] = fp8x2_to_f16x2<0>(w[j]);
      out[2 * j + 1] = fp8x2_to_f16x2<1>(w[j]);
    }
#elif PAGODA_KV_QUANT == KV_Q8_0
    const float d = half_bits_to_f(scales[r * (D / KV_Q8_BLOCK) + ch / 2]);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const u32 biased = w[j] ^ 0x80808080u;
      out[2 * j] = pack_tile_x2(s8_byte<0>(biased) * d, s8_byte<1>(biased) * d);
      out[2 * j + 1] = pack_tile_x2(s8_byte<2>(biased) * d, s8_byte<3>(biased) * d);
    }
#endif
    u32x4* o = reinterpret_cast<u32x4*>(dst + r * LD + ch * 16);
    o[0] = {out[0], out[1], out[2], out[3]};
    o[1] = {out[4], out[5], out[6], out[7]};
  }
}
