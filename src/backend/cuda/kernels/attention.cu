// A first, simple paged attention for prefill and decode alike (the fast kernels replace it): one block per
// (query token, KV head, GMAX query heads) handles those of the GQA group sharing that KV head (blockIdx.z picks
// which GMAX: groups wider than GMAX, as multi-query attention's, take several blocks). Each warp walks every NW-th key
// of the token's causal range with an online softmax; the warps' partial results are merged at the end.
//   q   [T, Hq*D]                         out [T, Hq*D]
//   k_cache, v_cache [blocks, block_size, Hk, D]
//   cu_seqlens_q [S+1], context_lens [S] (keys once this step's are written), block_tables [S, max_blocks]
// Query i of a sequence with q_len queries and kv_len keys sees keys [0, kv_len - q_len + i] (and only the last
// `window` of them when window > 0). softcap > 0: each scaled score s becomes softcap * tanh(s / softcap) (Gemma 2).
// EPL = ceil(D / 32) elements per lane; GMAX query heads per block (of the group's Hq / Hk).
// SELF = 1: no cache (embedding models): k_cache / v_cache are this step's K and V rows [T, Hk*D], key j of sequence
// s at row cu_seqlens_q[s] + j, every sequence whole. CAUSAL = 0: every query sees every key of its sequence.
// lse [T, Hq] (skipped when null): each query row's log-sum-exp of its scaled scores, as the flash kernels write it.
// PAGODA_KV_QUANT (kv_read.cuh): the cache is fp8 or q8_0, each value dequantized as it is read (k_scales / v_scales:
// q8_0's scale planes; k_scale / v_scale: fp8's layer scales).
#include "kv_read.cuh"

#ifndef EPL
#define EPL 4
#endif
#ifndef GMAX
#define GMAX 4
#endif
#ifndef SELF
#define SELF 0
#endif
#ifndef CAUSAL
#define CAUSAL 1
#endif
#define NW 4

extern "C" __global__ void __launch_bounds__(NW * 32)
paged_attention(T* __restrict__ out, const T* __restrict__ q, const kv_t* __restrict__ k_cache,
                const kv_t* __restrict__ v_cache, const int* __restrict__ cu_seqlens_q,
                const int* __restrict__ context_lens, const int* __restrict__ block_tables, int num_seqs,
                int max_blocks, int block_size, int num_q_heads, int num_kv_heads, int head_dim, float scale,
                int window, float softcap, float* __restrict__ lse, const unsigned short* __restrict__ k_scales,
                const unsigned short* __restrict__ v_scales, float k_scale, float v_scale) {
  PDL_ENTER();
  const int t = blockIdx.y, kvh = blockIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int group = num_q_heads / num_kv_heads;
  // This block's query heads: the group's [g0, g0 + heads), their rows from kvh * group + g0.
  const int g0 = blockIdx.z * GMAX, heads = min(GMAX, group - g0), head0 = kvh * group + g0;

  // The sequence of token t: the last s with cu_seqlens_q[s] <= t.
  int lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (cu_seqlens_q[mid] <= t) lo = mid; else hi = mid - 1;
  }
  const int s = lo;
  const int q_len = cu_seqlens_q[s + 1] - cu_seqlens_q[s];
  const int ctx = SELF ? q_len : context_lens[s];
  const int pos = ctx - q_len + (t - cu_seqlens_q[s]);
  const int last = CAUSAL ? pos : ctx - 1;
  const int first = CAUSAL && window > 0 ? max(0, pos - window + 1) : 0;
  const int* table = block_tables + (long long)s * max_blocks;

  float qr[GMAX][EPL], acc[GMAX][EPL], m[GMAX], l[GMAX];
#pragma unroll
  for (int g = 0; g < GMAX; g++) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int e = 0; e < EPL; e++) {
      const int d = lane + 32 * e;
      acc[g][e] = 0.f;
      qr[g][e] = g < heads && d < head_dim ? to_f(q[((long long)t * num_q_heads + head0 + g) * head_dim + d]) * scale
                                           : 0.f;
    }
  }

  for (int j = first + warp; j <= last; j += NW) {
    const long long slot =
        SELF ? (long long)cu_seqlens_q[s] + j : (long long)table[j / block_size] * block_size + j % block_size;
    const long long base = (slot * num_kv_heads + kvh) * head_dim;
    float kr[EPL], vr[EPL];
#pragma unroll
    for (int e = 0; e < EPL; e++) {
      const int d = lane + 32 * e;
      kr[e] = d < head_dim ? kv_value(k_cache, k_scales, k_scale, base + d) : 0.f;
      vr[e] = d < head_dim ? kv_value(v_cache, v_scales, v_scale, base + d) : 0.f;
    }
#pragma unroll
    for (int g = 0; g < GMAX; g++) {
      if (g >= heads) break;
      float dot = 0.f;
#pragma unroll
      for (int e = 0; e < EPL; e++) dot += qr[g][e] * kr[e];
      dot = warp_sum(dot);
      if (softcap > 0.f) dot = softcap * tanhf(dot / softcap);
      const float mn = fmaxf(m[g], dot);
      const float corr = expf(m[g] - mn), p = expf(dot - mn);
      l[g] = l[g] * corr + p;
#pragma unroll
      for (int e = 0; e < EPL; e++) acc[g][e] = acc[g][e] * corr + p * vr[e];
      m[g] = mn;
    }
  }

  // Merge the warps' partial softmaxes, one query head at a time.
  __shared__ float sm[NW], sl[NW], sacc[NW][32 * EPL];
#pragma unroll
  for (int g = 0; g < GMAX; g++) {
    if (g >= heads) break;
    if (lane == 0) {
      sm[warp] = m[g];
      sl[warp] = l[g];
    }
#pragma unroll
    for (int e = 0; e < EPL; e++) sacc[warp][lane + 32 * e] = acc[g][e];
    __syncthreads();
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < NW; w++) mx = fmaxf(mx, sm[w]);
    float denom = 0.f, wts[NW];
#pragma unroll
    for (int w = 0; w < NW; w++) {
      wts[w] = sm[w] == -INFINITY ? 0.f : expf(sm[w] - mx);
      denom += sl[w] * wts[w];
    }
    T* o = out + ((long long)t * num_q_heads + head0 + g) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += NW * 32) {
      float v = 0.f;
#pragma unroll
      for (int w = 0; w < NW; w++) v += sacc[w][d] * wts[w];
      o[d] = from_f(v / denom);
    }
    if (lse != nullptr && threadIdx.x == 0) lse[(long long)t * num_q_heads + head0 + g] = mx + logf(denom);
    __syncthreads();
  }
}
