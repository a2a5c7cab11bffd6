// ggml's block layouts (ggml-common.h), one type per build: QTYPE 0 q4_0, 1 q4_1, 2 q5_0, 3 q5_1, 4 q8_0, 5 q2_k,
// 6 q3_k, 7 q4_k, 8 q5_k, 9 q6_k (src/backend/cuda/quant-kernels.ts `QTYPE`). Every kernel of quant.cu decodes
// through qdecode8: values 8j .. 8j + 7 of the block at b, as float. The arithmetic is the CPU codecs'
// (src/primitives/quant/) rounded once per operation as ggml's reference is, with __fmul_rn / __fadd_rn so the
// compiler cannot contract a multiply and an add into one FMA: a dequantized value equals the CPU's float bit for bit.
// Needs __half2float, __ushort_as_half and the _rn intrinsics (common.cuh; test/backend/quant-blocks-host.test.ts
// builds it for the host with stand-ins to check it against the CPU codecs).
#pragma once

#ifndef QTYPE
#define QTYPE 7
#endif

typedef unsigned char u8;

// The IEEE half at p (blocks are byte-aligned only).
__device__ __forceinline__ float q_half(const u8* p) {
  return __half2float(__ushort_as_half((unsigned short)(p[0] | (p[1] << 8))));
}
__device__ __forceinline__ float q_mul(float a, float b) { return __fmul_rn(a, b); }
// step * q - min, rounded after the product and after the difference (the product is exact for every type here).
__device__ __forceinline__ float q_mul_sub(float step, float q, float min) { return __fsub_rn(__fmul_rn(step, q), min); }
__device__ __forceinline__ float q_mul_add(float step, float q, float off) { return __fadd_rn(__fmul_rn(step, q), off); }

#if QTYPE == 0 || QTYPE == 1 || QTYPE == 2 || QTYPE == 3 || QTYPE == 4
#define QK 32
#else
#define QK 256
#endif

#if QTYPE == 0
#define QBYTES 18
// d | qs[16]: nibble e mod 16 of byte e mod 16, the high one for e >= 16; value (q - 8) d.
__device__ __forceinline__ void qdecode8(const u8* b, int j, float (&v)[8]) {
  const float d = q_half(b);
  const u8* qs = b + 2 + 8 * (j & 1);
  const int shift = 4 * (j >> 1);
#pragma unroll
  for (int i = 0; i < 8; i++) v[i] = q_mul((float)(((qs[i] >> shift) & 15) - 8), d);
}
#elif QTYPE == 1
#define QBYTES 20
// d | m | qs[16]: value q d + m.
__device__ __forceinline__ void qdecode8(const u8* b, int j, float (&v)[8]) {
  const float d = q_half(b), m = q_half(b + 2);
  const u8* qs = b + 4 + 8 * (j & 1);
  const int shift = 4 * (j >> 1);
#pragma unroll
  for (int i = 0; i < 8; i++) v[i] = q_mul_add(d, (float)((qs[i] >> shift) & 15), m);
}
#elif QTYPE == 2 || QTYPE == 3
#if QTYPE == 2
#define QBYTES 22
#define Q5_HEAD 2
#else
#define QBYTES 24
#define Q5_HEAD 4
#endif
// d (| m) | qh (u32, bit e: value e's fifth bit) | qs[16] as Q4_0's; q5_0: (q - 16) d, q5_1: q d + m.
__device__ __forceinline__ void qdecode8(const u8* b, int j, float (&v)[8]) {
  const float d = q_half(b);
  const u8* h = b + Q5_HEAD;
  const unsigned qh = h[0] | (h[1] << 8) | (h[2] << 16) | ((unsigned)h[3] << 24);
  const u8* qs = b + Q5_HEAD + 4 + 8 * (j & 1);
  const int shift = 4 * (j >> 1);
#pragma unroll
  for (int i = 0; i < 8; i++) {
    const int q = ((qs[i] >> shift) & 15) | (((qh >> (8 * j + i)) & 1) << 4);
#if QTYPE == 2
    v[i] = q_mul((float)(q - 16), d);
#else
    v[i] = q_mul_add(d, (float)q, q_half(b + 2));
#endif
  }
}
#elif QTYPE == 4
#define QBYTES 34
// d | qs[32] (int8): value q d.
__device__ __forceinline__ void qdecode8(const u8* b, int j, float (&v)[8]) {
  const float d = q_half(b);
#pragma unroll
  for (int i = 0; i < 8; i++) v[i] = q_mul((float)(signed char)b[2 + 8 * j + i], d);
}
#elif QTYPE == 5
#define QBYTES 84
// scales[16] | qs[64] | d | dmin: sub-block e / 16 has step d (sc & 15) and min dmin (sc >> 4); the 2-bit level of
// value e is in byte 32 (e / 128) + e mod 32 at bit 2 ((e / 32) mod 4); value step q - min.
__device__ __forceinline__ void qdecode8(const u8* b, int j, float (&v)[8]) {
  const int e = 8 * j;
  const int sc = b[e >> 4];
  const float step = q_mul(q_half(b + 80), (float)(sc & 15)), min = q_mul(q_half(b + 82), (float)(sc >> 4));
  const u8* qs = b + 16 + 32 * (e >> 7) + (e & 31);
  const int shift = 2 * ((e >> 5) & 3);
#pragma unroll
  for (int i = 0; i < 8; i++) v[i] = q_mul_sub(step, (float)((qs[i] >> shift) & 3), min);
}
#elif QTYPE == 6
#define QBYTES 110
// hmask[32] | qs[64] | scales[12] | d: Q2_K's 2-bit levels, a third bit (bit e / 32 of hmask[e mod 32]; clear: -4),
// sub-block i's 6-bit scale (stored + 32) in nibbles of scales[i mod 8] and 2 bits of scales[8 + i mod 4].
__device__ __forceinline__ void qdecode8(const u8* b, int j, float (&v)[8]) {
  const int e = 8 * j, sub = e >> 4;
  const u8* sc = b + 96;
  const int low = sub < 8 ? sc[sub] & 15 : sc[sub - 8] >> 4;
  const int scale = low | (((sc[8 + (sub & 3)] >> (2 * (sub >> 2))) & 3) << 4);
  const float step = q_mul(q_half(b + 108), (float)(scale - 32));
  const u8* qs = b + 32 + 32 * (e >> 7) + (e & 31);
  const u8* hm = b + (e & 31);
  const int shift = 2 * ((e >> 5) & 3), bit = e >> 5;
#pragma unroll
  for (int i = 0; i < 8; i++) {
    const int q = ((qs[i] >> shift) & 3) - (((hm[i] >> bit) & 1) ? 0 : 4);
    v[i] = q_mul(step, (float)q);
  }
}
#elif QTYPE == 7 || QTYPE == 8
#if QTYPE == 7
#define QBYTES 144
#define QK_QS 16
#else
#define QBYTES 176
#define QK_QS 48
#endif
// d | dmin | scales[12] (sub-block j < 8: 6-bit scale and min, split for j >= 4) (| qh[32] for q5_k) | qs[128]:
// value e's nibble in byte 32 (e / 64) + e mod 32, the high one when (e / 32) is odd; q5_k's fifth bit is bit e / 32
// of qh[e mod 32]; value d sc q - dmin m.
__device__ __forceinline__ void qdecode8(const u8* b, int j, float (&v)[8]) {
  const int e = 8 * j, sub = e >> 5;
  const u8* s = b + 4;
  const int sc = sub < 4 ? s[sub] & 63 : (s[sub + 4] & 15) | ((s[sub - 4] >> 6) << 4);
  const int m = sub < 4 ? s[sub + 4] & 63 : (s[sub + 4] >> 4) | ((s[sub] >> 6) << 4);
  const float step = q_mul(q_half(b), (float)sc), min = q_mul(q_half(b + 2), (float)m);
  const u8* qs = b + QK_QS + 32 * (e >> 6) + (e & 31);
  const int shift = 4 * (sub & 1);
#pragma unroll
  for (int i = 0; i < 8; i++) {
    int q = (qs[i] >> shift) & 15;
#if QTYPE == 8
    q |= ((b[16 + (e & 31) + i] >> sub) & 1) << 4;
#endif
    v[i] = q_mul_sub(step, (float)q, min);
  }
}
#elif QTYPE == 9
#define QBYTES 210
// ql[128] | qh[64] | scales[16] (int8) | d: value e = 128 n + 32 k + l: low nibble of ql[64 n + 32 (k mod 2) + l]
// (high for k >= 2), 2 high bits at bit 2k of qh[32 n + l], level stored + 32; value d sc (q - 32).
__device__ __forceinline__ void qdecode8(const u8* b, int j, float (&v)[8]) {
  const int e = 8 * j, n = e >> 7, k = (e >> 5) & 3, l = e & 31;
  const float step = q_mul(q_half(b + 208), (float)(signed char)b[192 + (e >> 4)]);
  const u8* ql = b + 64 * n + 32 * (k & 1) + l;
  const u8* qh = b + 128 + 32 * n + l;
  const int shift = k < 2 ? 0 : 4;
#pragma unroll
  for (int i = 0; i < 8; i++) {
    const int q = ((ql[i] >> shift) & 15) | (((qh[i] >> (2 * k)) & 3) << 4);
    v[i] = q_mul(step, (float)(q - 32));
  }
}
#else
#error "QTYPE: 0..9"
#endif

// Value chunks of 8 per block.
#define QCHUNKS (QK / 8)

// Values 8c .. 8c + 7 of a row of blocks.
__device__ __forceinline__ void qdecode_row8(const u8* row, int c, float (&v)[8]) {
  qdecode8(row + (long long)(c / QCHUNKS) * QBYTES, c % QCHUNKS, v);
}
