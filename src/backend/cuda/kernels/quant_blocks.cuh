// ggml's block layouts (ggml-common.h), one type per build: QTYPE 0 q4_0, 1 q4_1, 2 q5_0, 3 q5_1, 4 q8_0, 5 q2_k,
// 6 q3_k, 7 q4_k, 8 q5_k, 9 q6_k (src/backend/cuda/quant-kernels.ts `QTYPE`). Every kernel of quant.cu decodes
// through qlevels8: values 8j .. 8j + 7 of the block at b as levels and one affine map. The arithmetic is the CPU
// codecs' (src/primitives/quant/) rounded once per operation as ggml's reference is, with __fmul_rn / __fsub_rn so
// the compiler cannot contract a multiply and a subtraction into one FMA: a dequantized value equals the CPU's float
// bit for bit. Needs __half2float, __ushort_as_half, __byte_perm and the _rn intrinsics (common.cuh;
// test/backend/quant-blocks-host.test.ts builds it for the host with stand-ins to check it against the CPU codecs).
#pragma once

#ifndef QTYPE
#define QTYPE 7
#endif

typedef unsigned char u8;

// The IEEE half at p (every type's halves are 2-byte aligned).
__device__ __forceinline__ float q_half(const u8* p) {
  return __half2float(__ushort_as_half(*reinterpret_cast<const unsigned short*>(p)));
}
// q - bias as float, exactly, for 0 <= q < 2^22 and small biases: q's bits under the exponent of 2^23, minus 2^23 +
// bias. Integer-to-float conversion instructions run at an eighth of the FMA rate; this is two full-rate ones.
__device__ __forceinline__ float q_float(unsigned q, int bias = 0) {
  return __int_as_float(0x4B000000u | q) - (8388608.f + (float)bias);
}
// A signed byte as float, exactly (offset to 0..255 first).
__device__ __forceinline__ float q_int8(unsigned b) { return q_float(b ^ 0x80u, 128); }
// Byte i of w (a level 0..255) minus bias as float, exactly: one byte permute puts it under 2^23's exponent. The
// decoders assemble four levels per 32-bit word with a few whole-word operations, then take them out one by one.
__device__ __forceinline__ float q_level(unsigned w, int i, int bias) {
  return __int_as_float(__byte_perm(w, 0x4B000000u, 0x7540 | i)) - (8388608.f + (float)bias);
}
// Bits 0..3 of b spread to bit 0 of bytes 0..3 (the shifted copies do not overlap, so nothing carries).
__device__ __forceinline__ unsigned q_spread4(unsigned b) { return ((b & 15u) * 0x00204081u) & 0x01010101u; }
__device__ __forceinline__ float q_mul(float a, float b) { return __fmul_rn(a, b); }
// step * q - min, rounded after the product and after the difference (the product is exact for every type here).
__device__ __forceinline__ float q_mul_sub(float step, float q, float min) { return __fsub_rn(__fmul_rn(step, q), min); }

// Values and bytes per block (ggml's type_traits).
#if QTYPE <= 4
#define QK 32
#else
#define QK 256
#endif
#if QTYPE == 0
#define QBYTES 18
#elif QTYPE == 1
#define QBYTES 20
#elif QTYPE == 2
#define QBYTES 22
#elif QTYPE == 3
#define QBYTES 24
#elif QTYPE == 4
#define QBYTES 34
#elif QTYPE == 5
#define QBYTES 84
#elif QTYPE == 6
#define QBYTES 110
#elif QTYPE == 7
#define QBYTES 144
#elif QTYPE == 8
#define QBYTES 176
#elif QTYPE == 9
#define QBYTES 210
#else
#error "QTYPE: 0..9"
#endif
// A part's blocks start 256-byte aligned (its allocation) and lie QBYTES apart (rows are whole blocks), so a block is
// aligned to its size's largest power of two up to 16; every run of level bytes a decoder reads sits at a multiple
// of that within its block.
#define QALIGN (QBYTES % 16 == 0 ? 16 : QBYTES % 8 == 0 ? 8 : QBYTES % 4 == 0 ? 4 : 2)

// The 8 bytes at p in as few loads as their alignment allows (bytes 0..3 in lo, 4..7 in hi).
struct q_bytes8 {
  unsigned lo, hi;
};
__device__ __forceinline__ q_bytes8 q_load8(const u8* p) {
#if QALIGN >= 8
  const uint2 u = *reinterpret_cast<const uint2*>(p);
  return {u.x, u.y};
#elif QALIGN == 4
  const unsigned* u = reinterpret_cast<const unsigned*>(p);
  return {u[0], u[1]};
#else
  const unsigned short* u = reinterpret_cast<const unsigned short*>(p);
  return {u[0] | ((unsigned)u[1] << 16), u[2] | ((unsigned)u[3] << 16)};
#endif
}

// A chunk of 8 values as its levels (exact floats) and one affine map: value = step * q - min, rounded after the
// product and after the difference as the CPU codecs round (min is 0 for the types without one, -m for q4_1 and
// q5_1's added m: the same roundings).
struct q_chunk {
  float q[8];
  float step, min;
};
// Whether the type's values have a min (an offset) besides the step.
#define QHAS_MIN (QTYPE == 1 || QTYPE == 3 || QTYPE == 5 || QTYPE == 7 || QTYPE == 8)

// Each decoder builds w[0], w[1]: the levels of values 0..3 and 4..7 of its chunk, one per byte.
#if QTYPE == 0 || QTYPE == 1
// q4_0: d | qs[16]; q4_1: d | m | qs[16]. Nibble e mod 16 of byte e mod 16, the high one for e >= 16; value
// (q - 8) d, or q d + m.
__device__ __forceinline__ void qlevels8(const u8* b, int j, q_chunk& c) {
  const float d = q_half(b);
  const int head = QTYPE == 0 ? 2 : 4;
  const q_bytes8 qs = q_load8(b + head + 8 * (j & 1));
  const int shift = 4 * (j >> 1);
  const unsigned w[2] = {(qs.lo >> shift) & 0x0F0F0F0Fu, (qs.hi >> shift) & 0x0F0F0F0Fu};
  c.step = d;
  c.min = QTYPE == 0 ? 0.f : -q_half(b + 2);
#pragma unroll
  for (int i = 0; i < 8; i++) c.q[i] = q_level(w[i >> 2], i & 3, QTYPE == 0 ? 8 : 0);
}
#elif QTYPE == 2 || QTYPE == 3
// d (| m) | qh (u32, bit e: value e's fifth bit) | qs[16] as Q4_0's; q5_0: (q - 16) d, q5_1: q d + m.
__device__ __forceinline__ void qlevels8(const u8* b, int j, q_chunk& c) {
  const float d = q_half(b);
  const int head = QTYPE == 2 ? 2 : 4;
  const unsigned short* h = reinterpret_cast<const unsigned short*>(b + head);
  const unsigned qh = (h[0] | ((unsigned)h[1] << 16)) >> (8 * j);
  const q_bytes8 qs = q_load8(b + head + 4 + 8 * (j & 1));
  const int shift = 4 * (j >> 1);
  const unsigned w[2] = {((qs.lo >> shift) & 0x0F0F0F0Fu) | (q_spread4(qh) << 4),
                         ((qs.hi >> shift) & 0x0F0F0F0Fu) | (q_spread4(qh >> 4) << 4)};
  c.step = d;
  c.min = QTYPE == 2 ? 0.f : -q_half(b + 2);
#pragma unroll
  for (int i = 0; i < 8; i++) c.q[i] = q_level(w[i >> 2], i & 3, QTYPE == 2 ? 16 : 0);
}
#elif QTYPE == 4
// d | qs[32] (int8): value q d (the signed bytes offset by 128).
__device__ __forceinline__ void qlevels8(const u8* b, int j, q_chunk& c) {
  const float d = q_half(b);
  const q_bytes8 qs = q_load8(b + 2 + 8 * j);
  const unsigned w[2] = {qs.lo ^ 0x80808080u, qs.hi ^ 0x80808080u};
#pragma unroll
  for (int i = 0; i < 8; i++) c.q[i] = q_level(w[i >> 2], i & 3, 128);
  c.step = d;
  c.min = 0.f;
}
#elif QTYPE == 5
// scales[16] | qs[64] | d | dmin: sub-block e / 16 has step d (sc & 15) and min dmin (sc >> 4); the 2-bit level of
// value e is in byte 32 (e / 128) + e mod 32 at bit 2 ((e / 32) mod 4); value step q - min.
__device__ __forceinline__ void qlevels8(const u8* b, int j, q_chunk& c) {
  const int e = 8 * j;
  const unsigned sc = b[e >> 4];
  const float step = q_mul(q_half(b + 80), q_float(sc & 15u)), min = q_mul(q_half(b + 82), q_float(sc >> 4));
  const q_bytes8 qs = q_load8(b + 16 + 32 * (e >> 7) + (e & 31));
  const int shift = 2 * ((e >> 5) & 3);
  const unsigned w[2] = {(qs.lo >> shift) & 0x03030303u, (qs.hi >> shift) & 0x03030303u};
#pragma unroll
  for (int i = 0; i < 8; i++) c.q[i] = q_level(w[i >> 2], i & 3, 0);
  c.step = step;
  c.min = min;
}
#elif QTYPE == 6
// hmask[32] | qs[64] | scales[12] | d: Q2_K's 2-bit levels, a third bit (bit e / 32 of hmask[e mod 32]; clear: -4),
// sub-block i's 6-bit scale (stored + 32) in nibbles of scales[i mod 8] and 2 bits of scales[8 + i mod 4].
__device__ __forceinline__ void qlevels8(const u8* b, int j, q_chunk& c) {
  const int e = 8 * j, sub = e >> 4;
  const u8* sc = b + 96;
  const unsigned low = sub < 8 ? sc[sub] & 15u : sc[sub - 8] >> 4;
  const unsigned scale = low | (((sc[8 + (sub & 3)] >> (2 * (sub >> 2))) & 3u) << 4);
  const float step = q_mul(q_half(b + 108), q_float(scale, 32));
  const q_bytes8 qs = q_load8(b + 32 + 32 * (e >> 7) + (e & 31));
  const q_bytes8 hm = q_load8(b + (e & 31));
  const int shift = 2 * ((e >> 5) & 3), bit = e >> 5;
  // Levels 0..7 with the high bit set stand for -4..3.
  const unsigned w[2] = {((qs.lo >> shift) & 0x03030303u) | (((hm.lo >> bit) & 0x01010101u) << 2),
                         ((qs.hi >> shift) & 0x03030303u) | (((hm.hi >> bit) & 0x01010101u) << 2)};
#pragma unroll
  for (int i = 0; i < 8; i++) c.q[i] = q_level(w[i >> 2], i & 3, 4);
  c.step = step;
  c.min = 0.f;
}
#elif QTYPE == 7 || QTYPE == 8
// d | dmin | scales[12] (sub-block j < 8: 6-bit scale and min, split for j >= 4) (| qh[32] for q5_k) | qs[128]:
// value e's nibble in byte 32 (e / 64) + e mod 32, the high one when (e / 32) is odd; q5_k's fifth bit is bit e / 32
// of qh[e mod 32]; value d sc q - dmin m.
// Sub-block `sub`'s affine map (d sc and dmin m, each rounded once) of the super-block at b.
__device__ __forceinline__ void qk_step_min(const u8* b, int sub, float& step, float& min) {
  const u8* s = b + 4;
  const unsigned sc = sub < 4 ? s[sub] & 63u : (s[sub + 4] & 15u) | ((s[sub - 4] >> 6) << 4);
  const unsigned m = sub < 4 ? s[sub + 4] & 63u : (s[sub + 4] >> 4) | ((s[sub] >> 6) << 4);
  step = q_mul(q_half(b), q_float(sc));
  min = q_mul(q_half(b + 2), q_float(m));
}
__device__ __forceinline__ void qlevels8(const u8* b, int j, q_chunk& c) {
  const int e = 8 * j, sub = e >> 5;
  float step, min;
  qk_step_min(b, sub, step, min);
  const q_bytes8 qs = q_load8(b + (QTYPE == 7 ? 16 : 48) + 32 * (e >> 6) + (e & 31));
  const int shift = 4 * (sub & 1);
  unsigned w[2] = {(qs.lo >> shift) & 0x0F0F0F0Fu, (qs.hi >> shift) & 0x0F0F0F0Fu};
#if QTYPE == 8
  const q_bytes8 qh = q_load8(b + 16 + (e & 31));
  w[0] |= ((qh.lo >> sub) & 0x01010101u) << 4;
  w[1] |= ((qh.hi >> sub) & 0x01010101u) << 4;
#endif
#pragma unroll
  for (int i = 0; i < 8; i++) c.q[i] = q_level(w[i >> 2], i & 3, 0);
  c.step = step;
  c.min = min;
}
#else
// q6_k: ql[128] | qh[64] | scales[16] (int8) | d: value e = 128 n + 32 k + l: low nibble of ql[64 n + 32 (k mod 2) + l]
// (high for k >= 2), 2 high bits at bit 2k of qh[32 n + l], level stored + 32; value d sc (q - 32).
__device__ __forceinline__ void qlevels8(const u8* b, int j, q_chunk& c) {
  const int e = 8 * j, n = e >> 7, k = (e >> 5) & 3, l = e & 31;
  const float step = q_mul(q_half(b + 208), q_int8(b[192 + (e >> 4)]));
  const q_bytes8 ql = q_load8(b + 64 * n + 32 * (k & 1) + l);
  const q_bytes8 qh = q_load8(b + 128 + 32 * n + l);
  const int shift = k < 2 ? 0 : 4;
  const unsigned w[2] = {((ql.lo >> shift) & 0x0F0F0F0Fu) | (((qh.lo >> (2 * k)) & 0x03030303u) << 4),
                         ((ql.hi >> shift) & 0x0F0F0F0Fu) | (((qh.hi >> (2 * k)) & 0x03030303u) << 4)};
#pragma unroll
  for (int i = 0; i < 8; i++) c.q[i] = q_level(w[i >> 2], i & 3, 32);
  c.step = step;
  c.min = 0.f;
}
#endif

// Value chunks of 8 per block.
#define QCHUNKS (QK / 8)

// The levels and map of values 8c .. 8c + 7 of a row of blocks.
__device__ __forceinline__ void qlevels_row8(const u8* row, int c, q_chunk& chunk) {
  qlevels8(row + (long long)(c / QCHUNKS) * QBYTES, c % QCHUNKS, chunk);
}

// Values 8c .. 8c + 7 of a row of blocks, as the CPU codecs compute them.
__device__ __forceinline__ void qdecode_row8(const u8* row, int c, float (&v)[8]) {
  q_chunk chunk;
  qlevels_row8(row, c, chunk);
#pragma unroll
  for (int i = 0; i < 8; i++) v[i] = q_mul_sub(chunk.step, chunk.q[i], chunk.min);
}
