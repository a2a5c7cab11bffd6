// The integer route of the decode GEMV (llama.cpp's mmvq): a block's values 32 at a time as packed levels, four per
// 32-bit word, for dp4a against activations quantized to 8 bits per 32 values (quant_act.cu). Every type's levels
// fit a signed byte (0..63, q8_0's own signed bytes), and its values are step * level - min with one step and min
// per 16 values (the k-quants with 16-value scales have two a group; the others repeat one; a level bias such as
// q4_0's 8 is folded into min). Built with quant_blocks.cuh (its QTYPE, QK, QBYTES, QALIGN and helpers); also
// built for the host by test/backend/quant-blocks-host.test.ts with stand-ins for the intrinsics.
#pragma once
#include "q8_scale.cuh"

// 32 values' levels (w[i]: values 4i .. 4i + 3, one per byte) and the affine maps of values 0..15 and 16..31.
struct q_group {
  int w[8];
  float step[2], min[2];
};

// N 32-bit words of the bytes at p (N = 4 or 8, p aligned as the type's blocks allow): vector loads where the
// alignment allows them; for 2-byte-aligned blocks, the aligned words around p shifted into place, the last two bytes
// read alone so that no byte past p + 4N is read (a row's last block may end its allocation).
template <int N>
__device__ __forceinline__ void q_words(const u8* p, unsigned (&u)[N]) {
#if QALIGN == 16
#pragma unroll
  for (int i = 0; i < N / 4; i++) {
    const uint4 v = reinterpret_cast<const uint4*>(p)[i];
    u[4 * i] = v.x, u[4 * i + 1] = v.y, u[4 * i + 2] = v.z, u[4 * i + 3] = v.w;
  }
#elif QALIGN == 8
#pragma unroll
  for (int i = 0; i < N / 2; i++) {
    const uint2 v = reinterpret_cast<const uint2*>(p)[i];
    u[2 * i] = v.x, u[2 * i + 1] = v.y;
  }
#elif QALIGN == 4
#pragma unroll
  for (int i = 0; i < N; i++) u[i] = reinterpret_cast<const unsigned*>(p)[i];
#else
  const unsigned* a = reinterpret_cast<const unsigned*>(reinterpret_cast<unsigned long long>(p) & ~3ull);
  const unsigned shift = 8 * (reinterpret_cast<unsigned long long>(p) & 3ull);
  unsigned next = a[0];
#pragma unroll
  for (int i = 0; i < N; i++) {
    const unsigned cur = next;
    next = i + 1 < N ? a[i + 1] : *reinterpret_cast<const unsigned short*>(p + 4 * N - 2);
    u[i] = __funnelshift_r(cur, next, shift);
  }
#endif
}

// Both halves' map: one step and min for all 32 values.
__device__ __forceinline__ void q_same_map(q_group& g, float step, float min) {
  g.step[0] = g.step[1] = step;
  g.min[0] = g.min[1] = min;
}

// Group j (values 32j .. 32j + 31) of the block at b.
__device__ __forceinline__ void qgroup(const u8* b, int j, q_group& g) {
#if QTYPE <= 3
  // q4_0 / q4_1 / q5_0 / q5_1: one group a block; the low nibbles of qs[16] are values 0..15, the high ones 16..31.
  const float d = q_half(b);
  const int head = (QTYPE == 0 || QTYPE == 2 ? 2 : 4) + (QTYPE >= 2 ? 4 : 0);
  unsigned qs[4];
  q_words<4>(b + head, qs);
#if QTYPE >= 2
  const unsigned short* h = reinterpret_cast<const unsigned short*>(b + head - 4);
  const unsigned qh = h[0] | ((unsigned)h[1] << 16);
#endif
#pragma unroll
  for (int i = 0; i < 4; i++) {
    g.w[i] = (int)(qs[i] & 0x0F0F0F0Fu);
    g.w[4 + i] = (int)((qs[i] >> 4) & 0x0F0F0F0Fu);
#if QTYPE >= 2
    g.w[i] |= (int)(q_spread4(qh >> (4 * i)) << 4);
    g.w[4 + i] |= (int)(q_spread4(qh >> (16 + 4 * i)) << 4);
#endif
  }
  // Legacy types without m: levels offset by 8 (q4_0) or 16 (q5_0); with m: value d q + m.
  q_same_map(g, d, QTYPE == 0 ? q_mul(d, 8.f) : QTYPE == 2 ? q_mul(d, 16.f) : -q_half(b + 2));
#elif QTYPE == 4
  unsigned qs[8];
  q_words<8>(b + 2, qs);
#pragma unroll
  for (int i = 0; i < 8; i++) g.w[i] = (int)qs[i];
  q_same_map(g, q_half(b), 0.f);
#elif QTYPE == 5
  // q2_k: qs[32 (j / 4) + l] holds value 32 j + l at bit 2 (j mod 4); sub-block s (16 values) scale byte b[s].
  unsigned qs[8];
  q_words<8>(b + 16 + 32 * (j >> 2), qs);
  const int shift = 2 * (j & 3);
#pragma unroll
  for (int i = 0; i < 8; i++) g.w[i] = (int)((qs[i] >> shift) & 0x03030303u);
  const float d = q_half(b + 80), dmin = q_half(b + 82);
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const unsigned sc = b[2 * j + h];
    g.step[h] = q_mul(d, q_float(sc & 15u));
    g.min[h] = q_mul(dmin, q_float(sc >> 4));
  }
#elif QTYPE == 6
  // q3_k: q2_k's 2-bit layout plus bit j of hmask[l]; levels 0..7 stand for -4..3; 6-bit scales stored + 32.
  unsigned qs[8], hm[8];
  q_words<8>(b + 32 + 32 * (j >> 2), qs);
  q_words<8>(b, hm);
  const int shift = 2 * (j & 3);
#pragma unroll
  for (int i = 0; i < 8; i++) g.w[i] = (int)(((qs[i] >> shift) & 0x03030303u) | (((hm[i] >> j) & 0x01010101u) << 2));
  const u8* sc = b + 96;
  const float d = q_half(b + 108);
#pragma unroll
  for (int h = 0; h < 2; h++) {
    const int sub = 2 * j + h;
    const unsigned low = sub < 8 ? sc[sub] & 15u : sc[sub - 8] >> 4;
    const unsigned scale = low | (((sc[8 + (sub & 3)] >> (2 * (sub >> 2))) & 3u) << 4);
    g.step[h] = q_mul(d, q_float(scale, 32));
    g.min[h] = q_mul(g.step[h], 4.f);
  }
#elif QTYPE == 7 || QTYPE == 8
  // q4_k / q5_k: group j is sub-block j; its nibbles are the low (j even) or high ones of qs[32 (j / 2) ..];
  // q5_k's fifth bit is bit j of qh[l].
  const u8* s = b + 4;
  const unsigned sc = j < 4 ? s[j] & 63u : (s[j + 4] & 15u) | ((s[j - 4] >> 6) << 4);
  const unsigned m = j < 4 ? s[j + 4] & 63u : (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  unsigned qs[8];
  q_words<8>(b + (QTYPE == 7 ? 16 : 48) + 32 * (j >> 1), qs);
  const int shift = 4 * (j & 1);
#if QTYPE == 8
  unsigned qh[8];
  q_words<8>(b + 16, qh);
#endif
#pragma unroll
  for (int i = 0; i < 8; i++) {
    g.w[i] = (int)((qs[i] >> shift) & 0x0F0F0F0Fu);
#if QTYPE == 8
    g.w[i] |= (int)(((qh[i] >> j) & 0x01010101u) << 4);
#endif
  }
  q_same_map(g, q_mul(q_half(b), q_float(sc)), q_mul(q_half(b + 2), q_float(m)));
#else
  // q6_k: group j = 4n + k: low nibbles (k < 2) or high ones of ql[64 n + 32 (k mod 2) ..], 2 high bits at bit 2k of
  // qh[32 n ..]; levels stored + 32; int8 scale per 16 values.
  const int n = j >> 2, k = j & 3;
  unsigned ql[8], qh[8];
  q_words<8>(b + 64 * n + 32 * (k & 1), ql);
  q_words<8>(b + 128 + 32 * n, qh);
  const int shift = k < 2 ? 0 : 4;
#pragma unroll
  for (int i = 0; i < 8; i++)
    g.w[i] = (int)(((ql[i] >> shift) & 0x0F0F0F0Fu) | (((qh[i] >> (2 * k)) & 0x03030303u) << 4));
  const float d = q_half(b + 208);
#pragma unroll
  for (int h = 0; h < 2; h++) {
    g.step[h] = q_mul(d, q_int8(b[192 + 2 * j + h]));
    g.min[h] = q_mul(g.step[h], 32.f);
  }
#endif
}

// Groups of 32 values per block.
#define QGROUPS (QK / 32)

// An int as float, exactly, for |v| < 2^22 (every level sum here): the magic-number trick, two full-rate operations.
__device__ __forceinline__ float q_int_float(int v) { return __int_as_float(0x4B400000 + v) - 12582912.f; }

// The dot product of a weight group with 32 quantized activations (w's levels against xq's 8 words) in float:
// d_x * sum over halves of (step * Σ level x - min * Σ x).
__device__ __forceinline__ float q_group_dot(const q_group& g, const int (&xq)[8], q8_scale xs) {
  int dot[2] = {0, 0};
#pragma unroll
  for (int i = 0; i < 8; i++) dot[i >> 2] = __dp4a(g.w[i], xq[i], dot[i >> 2]);
  const float sum0 = q_int_float((int)(short)(xs.sums & 0xFFFF)), sum1 = q_int_float(xs.sums >> 16);
  return xs.d * (g.step[0] * q_int_float(dot[0]) - g.min[0] * sum0 + g.step[1] * q_int_float(dot[1]) - g.min[1] * sum1);
}
