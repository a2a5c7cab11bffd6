// Combines the per-split partials of paged_decode.cu by LSE: grid (num_heads, num_seqs), head_dim threads. A module
// of its own: one build serves every head size and tile shape.
#include "decode_out.cuh"

extern "C" __global__ void paged_decode_merge(const float* __restrict__ partial_o,
                                              const float* __restrict__ partial_lse, elem16_t* __restrict__ out,
                                              int o_stride, float* __restrict__ lse, int num_heads, int num_splits,
                                              int head_dim, signed char* __restrict__ xq, q8_scale* __restrict__ xs) {
  PDL_ENTER();
  const int head = blockIdx.x;
  const int seq = blockIdx.y;
  const int d = threadIdx.x;
  const long long base = ((long long)seq * num_heads + head) * num_splits;
  float m_max = ATTN_NEG_INF;
  for (int s = 0; s < num_splits; s++) m_max = fmaxf(m_max, partial_lse[base + s]);
  float sum = 0.f;
  float acc = 0.f;
  if (m_max != ATTN_NEG_INF) {
    for (int s = 0; s < num_splits; s++) {
      const float w = __expf(partial_lse[base + s] - m_max);
      sum += w;
      acc += w * partial_o[(base + s) * head_dim + d];
    }
  }
  store_o(out, (long long)seq * o_stride + head * head_dim + d, sum > 0.f ? acc / sum : 0.f, xq, xs);
  if (d == 0) lse[(long long)seq * num_heads + head] = sum > 0.f ? m_max + __logf(sum) : ATTN_NEG_INF;
}
