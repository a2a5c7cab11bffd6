#pragma once
// One RoPE rotation pair, shared by rope.cu and gemv.cu's ROPE build so the fused q/k/v GEMV rotates bit for bit as
// rope.cu does: every product and sum is an explicit round-to-nearest operation, never contracted to an FMA (which
// NVVM and ptxas each decide per call site).
#include "common.cuh"

// Rotation pair i's two dims: (i, i + half) for neox, (2i, 2i + 1) for GPT-J.
__device__ __forceinline__ int pair_a(int i, int neox) { return neox ? i : 2 * i; }
__device__ __forceinline__ int pair_b(int i, int half, int neox) { return neox ? i + half : 2 * i + 1; }

// (x0, x1) turned by pos * freq, both scaled by mscale (YaRN's attention factor), rounded to T.
__device__ __forceinline__ void rotate_pair(float x0, float x1, float pos, float freq, float mscale, T& ra, T& rb) {
  float s, c;
  sincosf(__fmul_rn(pos, freq), &s, &c);
  c = __fmul_rn(c, mscale);
  s = __fmul_rn(s, mscale);
  ra = from_f(__fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s)));
  rb = from_f(__fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s)));
}
