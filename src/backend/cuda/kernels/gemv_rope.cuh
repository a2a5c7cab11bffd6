#pragma once
// gemv.cu's ROPE build: the packed q/k/v projection [(Hq + 2Hk) D, K] of a decode step with RoPE and the KV cache
// write as its epilogue, bit for bit the plain GEMV (same SPLIT, so each row's sum is added in the same order) followed
// by rope.cu. Group g owns pair g % (D / 2) of head g / (D / 2) (q heads, then k, then v): in a q or k head, pairs
// below rot / 2 are the rotation's, (i, i + rot / 2) for neox or (2i, 2i + 1) for GPT-J; every other pair is the
// consecutive dims (2i, 2i + 1), passed through. Each sum + bias is rounded to T as the GEMV stores it, then rotated as
// rope.cu reads and turns it, and stored to q, k or v [rows, heads * D]; a k or v head's pair also to its cache at
// slot_mapping[t] ((slot * Hk + kv_head) * D + dim, slot -1: not written), as rope.cu writes the cache.
#include "rope_pair.cuh"

struct RopeOut {
  T* __restrict__ q;
  T* __restrict__ k;
  T* __restrict__ v;
  const T* __restrict__ bias;
  const int* __restrict__ positions;
  const float* __restrict__ inv_freq;
  T* __restrict__ k_cache;
  T* __restrict__ v_cache;
  const int* __restrict__ slot_mapping;
  int num_q_heads, num_kv_heads, head_dim, rot, neox;
  float mscale;

  __device__ __forceinline__ bool has(int g) const {
    return g < (num_q_heads + 2 * num_kv_heads) * (head_dim / 2);
  }

  // Pair i of a head: whether it turns, and its two dims.
  __device__ __forceinline__ bool turns(int head, int i) const {
    return head < num_q_heads + num_kv_heads && i < rot / 2;
  }
  __device__ __forceinline__ int dim(int head, int i, int r) const {
    if (!turns(head, i)) return 2 * i + r;
    return r ? pair_b(i, rot / 2, neox) : pair_a(i, neox);
  }

  // Weight row r of group g: its head's first row plus the pair's r-th dim (past the last head for a group without
  // features, which reads nothing).
  __device__ __forceinline__ long long row(int g, int r) const {
    const int head = g / (head_dim / 2), i = g % (head_dim / 2);
    return (long long)head * head_dim + dim(head, i, r);
  }

  __device__ __forceinline__ void emit(int t, int g, const float (&s)[ROWS]) const {
    const int head = g / (head_dim / 2), i = g % (head_dim / 2);
    const int a = dim(head, i, 0), b = dim(head, i, 1);
    const long long c = (long long)head * head_dim;
    // The plain GEMV's stores, y[t, c + a] and y[t, c + b].
    T ra = from_f(s[0] + (bias ? to_f(bias[c + a]) : 0.f));
    T rb = from_f(s[1] + (bias ? to_f(bias[c + b]) : 0.f));
    if (turns(head, i)) rotate_pair(to_f(ra), to_f(rb), (float)positions[t], inv_freq[i], mscale, ra, rb);
    const bool is_q = head < num_q_heads, is_k = !is_q && head < num_q_heads + num_kv_heads;
    const int part_head = is_q ? head : is_k ? head - num_q_heads : head - num_q_heads - num_kv_heads;
    const int part_heads = is_q ? num_q_heads : num_kv_heads;
    T* dst = (is_q ? q : is_k ? k : v) + ((long long)t * part_heads + part_head) * head_dim;
    dst[a] = ra;
    dst[b] = rb;
    if (is_q) return;
    const long long slot = slot_mapping[t];
    if (slot < 0) return;
    T* cache = (is_k ? k_cache : v_cache) + (slot * num_kv_heads + part_head) * head_dim;
    cache[a] = ra;
    cache[b] = rb;
  }
};
