// paged_decode's quantized-cache path at head sizes 64, 128 and 256: K and V go from the cp.async ring's bytes
// (fp8 e4m3, or q8_0's int8 with a half scale per 32 values) straight into the float16 mma fragments
// (attention_common.cuh's ATTN_TILE_F16), with no dequantized tile in shared memory and no ldmatrix.
//
// mma m16n8k16 (row.col) fragments for lane (g = lane / 4, t = lane % 4): A's rows g, g + 8 at k slots {2t, 2t + 1}
// (a0, a1) and {2t + 8, 2t + 9} (a2, a3); B's column g at the same slots (b0, b1); C's rows g, g + 8 at columns 2t,
// 2t + 1. A sum does not care which k a slot holds as long as A and B agree, so:
// - S = Q K^T: lane t's slots in the kk-th k-step hold head dims t * D/4 + 4 kk + {0, 1} (a0/b0) and {2, 3} (a2/b1),
//   so lane (g, t) reads D/4 contiguous bytes of key g's row (16-byte loads) and each 32-bit word is one k-step's
//   b0 (low half) and b1 (high half).
// - O = P V: C's column n of dim tile dt is head dim n * D/8 + dt, so lane (g, t) reads D/8 contiguous bytes of each
//   of its four key rows (16kk + 2t, +1, +8, +9) and pairs them byte by byte (one byte permute per two dim tiles).
//   decode_o_dim maps O's accumulators back to head dims.
// A lane's bytes of a row lie within one q8_0 block at every head size here, so each row needs one scale a lane.
// Other head sizes dequantize into a tile (dequant_tile): their rows do not split into whole 16- and 8-byte loads.
#pragma once
#include "attention_common.cuh"

// 8 bytes as two words (head size 64's V loads).
struct __align__(8) u32x2 {
  u32 x, y;
};

template <int D>
__host__ __device__ constexpr bool kv_regs_path() {
  return PAGODA_KV_QUANT != 0 && D % 64 == 0;
}

// Values 2H, 2H + 1 of a word of cache bytes as a float16 pair: fp8 exactly; q8_0 as int8 x its block's scale, the
// two scales a half pair (`scales2`), rounded once.
template <int H>
__device__ __forceinline__ u32 kv_pair(u32 w, u32 scales2) {
#if PAGODA_KV_QUANT == KV_FP8
  return fp8x2_to_f16x2<H>(w);
#else
  u32 r;
  asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(r) : "r"(s8x2_to_f16x2<H>(w)), "r"(scales2));
  return r;
#endif
}

// The half scale of the q8_0 block holding byte `at` of `key`'s row (0 for fp8, which has none).
template <int D>
__device__ __forceinline__ u32 kv_scale(const unsigned short* scales, int key, int at) {
  if constexpr (PAGODA_KV_QUANT != KV_Q8_0) return 0;
  return scales[key * (D / KV_Q8_BLOCK) + at / KV_Q8_BLOCK];
}

// Q's A fragments for the permuted k slots: rows g and g + 8 of the query tile in shared memory (16 rows at stride
// ld, already float16: q_tile_to_f16).
template <int D>
__device__ __forceinline__ void q_frags_permuted(u32 (&qf)[D / 16][4], const elem16_t* q_s, int ld, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const u32* q = reinterpret_cast<const u32*>(q_s + (g + 8 * h) * ld + t * (D / 4) + 4 * kk);
      qf[kk][h] = q[0];
      qf[kk][h + 2] = q[1];
    }
  }
}

// S (16 x 8 NT) += Q K^T for NT key groups of 8 from a tile of cache rows (row_bytes apart) in shared memory, and
// for q8_0 the rows' scales (D / 32 halves a row).
template <int D, int NT>
__device__ __forceinline__ void kv_qk(float (&s)[NT][4], const u32 (&qf)[D / 16][4], const unsigned char* k_tile,
                                      const unsigned short* k_scales, int row_bytes, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int j = 0; j < NT; j++) {
    const u32x4* row = reinterpret_cast<const u32x4*>(k_tile + (j * 8 + g) * row_bytes + t * (D / 4));
#pragma unroll
    for (int c = 0; c < D / 64; c++) {
      const u32x4 raw = row[c];
      const u32 w[4] = {raw.x, raw.y, raw.z, raw.w};
      const u32 sc = kv_scale<D>(k_scales, j * 8 + g, t * (D / 4) + 16 * c) * 0x10001u;
#pragma unroll
      for (int i = 0; i < 4; i++) mma_16816(s[j], qf[4 * c + i], kv_pair<0>(w[i], sc), kv_pair<1>(w[i], sc));
    }
  }
}

// O (16 x D, dims permuted: decode_o_dim) += P V for the NN 16-key steps of a tile of cache rows (and q8_0 scales);
// P is s (the probabilities of NN 16-key steps as mma accumulators).
template <int D, int NN>
__device__ __forceinline__ void kv_pv(float (&o)[D / 8][4], const float (&s)[2 * NN][4], const unsigned char* v_tile,
                                      const unsigned short* v_scales, int row_bytes, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int kk = 0; kk < NN; kk++) {
    u32 a[4];
    a[0] = pack_tile_x2(s[2 * kk][0], s[2 * kk][1]);
    a[1] = pack_tile_x2(s[2 * kk][2], s[2 * kk][3]);
    a[2] = pack_tile_x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    a[3] = pack_tile_x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    // Keys 2t, 2t + 1 (b0) and 2t + 8, 2t + 9 (b1) of this step, D/8 bytes each from dim g * D/8.
    const unsigned char* base = v_tile + (16 * kk + 2 * t) * row_bytes + g * (D / 8);
#pragma unroll
    for (int c = 0; c < D / 128 + (D % 128 != 0); c++) {
      u32 r[4][4], sc[4];
#pragma unroll
      for (int k = 0; k < 4; k++) {
        const int key = 16 * kk + 2 * t + (k & 1) + 8 * (k >> 1);
        sc[k] = kv_scale<D>(v_scales, key, g * (D / 8) + 16 * c);
        const unsigned char* p = base + ((k & 1) + 8 * (k >> 1)) * row_bytes + 16 * c;
        if constexpr (D / 8 >= 16) {
          const u32x4 v = *reinterpret_cast<const u32x4*>(p);
          r[k][0] = v.x, r[k][1] = v.y, r[k][2] = v.z, r[k][3] = v.w;
        } else {
          const u32x2 v = *reinterpret_cast<const u32x2*>(p);
          r[k][0] = v.x, r[k][1] = v.y;
        }
      }
#pragma unroll
      for (int i = 0; i < (D / 8 >= 16 ? 4 : 2); i++) {
        // Bytes b, b + 1 of word i pair keys (2t, 2t + 1) and (2t + 8, 2t + 9) for dim tiles 4i + b.
        const u32 lo01 = __byte_perm(r[0][i], r[1][i], 0x5140), hi01 = __byte_perm(r[0][i], r[1][i], 0x7362);
        const u32 lo89 = __byte_perm(r[2][i], r[3][i], 0x5140), hi89 = __byte_perm(r[2][i], r[3][i], 0x7362);
        const u32 s01 = sc[0] | sc[1] << 16, s89 = sc[2] | sc[3] << 16;
        const int dt = 16 * c + 4 * i;
        mma_16816(o[dt], a, kv_pair<0>(lo01, s01), kv_pair<0>(lo89, s89));
        mma_16816(o[dt + 1], a, kv_pair<1>(lo01, s01), kv_pair<1>(lo89, s89));
        mma_16816(o[dt + 2], a, kv_pair<0>(hi01, s01), kv_pair<0>(hi89, s89));
        mma_16816(o[dt + 3], a, kv_pair<1>(hi01, s01), kv_pair<1>(hi89, s89));
      }
    }
  }
}

// The head dim of O's accumulator column `col` (0..7) in dim tile dt: the standard layout's dt * 8 + col, or
// kv_pv's col * D/8 + dt.
template <int D>
__device__ __forceinline__ int decode_o_dim(int dt, int col) {
  return kv_regs_path<D>() ? col * (D / 8) + dt : dt * 8 + col;
}
