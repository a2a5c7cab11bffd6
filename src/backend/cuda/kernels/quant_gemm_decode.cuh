// quant_gemm.cu's decoder: a 256-value run of a weight row's blocks (one k-quant super-block, eight q8_0 blocks) as
// copied into shared memory, 32 values at a time, to the CPU codecs' floats bit for bit (quant_blocks.cuh's layouts and
// roundings: step * q - min, rounded after the product and after the difference). Types: q8_0, q4_k, q5_k, q6_k.
// Header-free beyond quant_blocks.cuh (test/backend/quant-blocks-host.test.ts builds it for the host, the run at every
// offset its alignment allows, against the codecs).
#pragma once
#include "quant_blocks.cuh"

#if QTYPE != 4 && QTYPE != 7 && QTYPE != 8 && QTYPE != 9
#error "quant_gemm: QTYPE 4 (q8_0), 7 (q4_k), 8 (q5_k) or 9 (q6_k)"
#endif

typedef unsigned int qg_u32;

// Values per raw run (a k-quant super-block; eight q8_0 blocks), its bytes, and the 16-byte chunks that cover it from
// any offset its alignment allows.
#define QG_RUN 256
#define QG_RUN_BYTES (QG_RUN / QK * QBYTES)
#define QG_RUN_CHUNKS ((QG_RUN_BYTES + (QALIGN < 16 ? 16 - QALIGN : 0) + 15) / 16)

// N words of shared memory from p (2-byte aligned for q6_k / q8_0: two aligned words funnel-shifted).
template <int N>
__device__ __forceinline__ void qg_words(const u8* p, qg_u32 (&w)[N]) {
#if QALIGN >= 16
  static_assert(N % 4 == 0, "whole 16-byte loads");
#pragma unroll
  for (int i = 0; i < N / 4; i++) {
    const uint4 v = reinterpret_cast<const uint4*>(p)[i];
    w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
  }
#else
  const qg_u32* a = reinterpret_cast<const qg_u32*>(reinterpret_cast<size_t>(p) & ~(size_t)3);
  const qg_u32 shift = (reinterpret_cast<size_t>(p) & 2) * 8;
  qg_u32 prev = a[0];
#pragma unroll
  for (int i = 0; i < N; i++) {
    const qg_u32 next = a[i + 1];
    w[i] = __funnelshift_r(prev, next, shift);
    prev = next;
  }
#endif
}

// One thread's 32 values of a step: the levels (a byte each, four to a word, value order) and their affine map.
struct qg_sub {
  qg_u32 lv[8];
  float step, step_hi;  // step_hi: q6_k's second 16 values (a scale per 16)
  float min;
};

// Sub-block sb (values 32 sb .. 32 sb + 31) of the 256-value run at p, decoded to levels (quant_blocks.cuh's layouts).
__device__ __forceinline__ void qg_prepare(const u8* p, int sb, qg_sub& s) {
#if QTYPE == 4
  // Eight q8_0 blocks: d | qs[32] (int8), offset by 128 to unsigned bytes.
  const u8* b = p + sb * QBYTES;
  qg_words(b + 2, s.lv);
#pragma unroll
  for (int i = 0; i < 8; i++) s.lv[i] ^= 0x80808080u;
  s.step = s.step_hi = q_half(b);
  s.min = 0.f;
#elif QTYPE == 7 || QTYPE == 8
  // d | dmin | scales[12] (| qh[32]) | qs[128]: value e's nibble in byte 32 (e / 64) + e mod 32 (high for odd e / 32).
  qk_step_min(p, sb, s.step, s.min);
  s.step_hi = s.step;
  qg_words(p + (QTYPE == 7 ? 16 : 48) + 32 * (sb >> 1), s.lv);
  const int shift = 4 * (sb & 1);
#pragma unroll
  for (int i = 0; i < 8; i++) s.lv[i] = (s.lv[i] >> shift) & 0x0F0F0F0Fu;
#if QTYPE == 8
  qg_u32 qh[8];
  qg_words(p + 16, qh);
#pragma unroll
  for (int i = 0; i < 8; i++) s.lv[i] |= ((qh[i] >> sb) & 0x01010101u) << 4;
#endif
#else
  // q6_k: ql[128] | qh[64] | scales[16] (int8) | d; value e = 128 n + 32 k + l: nibble of ql[64 n + 32 (k mod 2) + l]
  // (high for k >= 2), 2 bits at 2k of qh[32 n + l].
  const int n = sb >> 2, kq = sb & 3;
  qg_u32 ql[8], qh[8];
  qg_words(p + 64 * n + 32 * (kq & 1), ql);
  qg_words(p + 128 + 32 * n, qh);
  const int shift = kq < 2 ? 0 : 4;
#pragma unroll
  for (int i = 0; i < 8; i++) s.lv[i] = ((ql[i] >> shift) & 0x0F0F0F0Fu) | (((qh[i] >> (2 * kq)) & 0x03030303u) << 4);
  const float d = q_half(p + 208);
  s.step = q_mul(d, q_int8(p[192 + 2 * sb]));
  s.step_hi = q_mul(d, q_int8(p[193 + 2 * sb]));
  s.min = 0.f;
#endif
}

// Values 8j .. 8j + 7 of a prepared sub-block as floats (j: 0..3).
__device__ __forceinline__ void qg_values8(const qg_sub& s, int j, float (&f)[8]) {
  constexpr int bias = QTYPE == 4 ? 128 : QTYPE == 9 ? 32 : 0;
  const float step = j < 2 ? s.step : s.step_hi;
#pragma unroll
  for (int i = 0; i < 8; i++) f[i] = q_mul_sub(step, q_level(s.lv[2 * j + (i >> 2)], i & 3, bias), s.min);
}
