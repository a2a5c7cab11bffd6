// Rotary position embedding, in place on q [T, Hq*D] and k [T, Hk*D]; one block per token.
// neox = 1 rotates pairs (i, i + rot/2) (HF Llama); 0 rotates (2i, 2i + 1) (GPT-J). Only the first rot dims turn.
// With a cache (k_cache non-null) the block then writes its token's rotated k and its v row to the paged cache at
// slot_mapping[t] (-1 skipped), as reshape_and_cache does: one launch instead of two per layer.
#include "common.cuh"

extern "C" __global__ void rope(T* __restrict__ q, T* __restrict__ k, const int* __restrict__ positions,
                                const float* __restrict__ inv_freq, int num_q_heads, int num_kv_heads, int head_dim,
                                int rot, int neox, float mscale, const T* __restrict__ v,
                                T* __restrict__ k_cache, T* __restrict__ v_cache,
                                const int* __restrict__ slot_mapping) {
  PDL_ENTER();
  const int t = blockIdx.x;
  const float pos = (float)positions[t];
  const int half_rot = rot / 2;
  const int pairs = (num_q_heads + num_kv_heads) * half_rot;
  for (int p = threadIdx.x; p < pairs; p += blockDim.x) {
    const int head = p / half_rot, i = p % half_rot;
    T* x = head < num_q_heads ? q + ((long long)t * num_q_heads + head) * head_dim
                              : k + ((long long)t * num_kv_heads + (head - num_q_heads)) * head_dim;
    const float angle = pos * inv_freq[i];
    const float c = cosf(angle) * mscale, s = sinf(angle) * mscale;
    const int a = neox ? i : 2 * i, b = neox ? i + half_rot : 2 * i + 1;
    const float x0 = to_f(x[a]), x1 = to_f(x[b]);
    x[a] = from_f(x0 * c - x1 * s);
    x[b] = from_f(x1 * c + x0 * s);
  }
  if (k_cache == nullptr) return;
  const long long slot = slot_mapping[t];
  if (slot < 0) return;
  __syncthreads();  // the block's rotated k is visible to all its threads
  const int row = num_kv_heads * head_dim;
  const long long src = (long long)t * row, dst = slot * row;
  for (int i = threadIdx.x; i < row; i += blockDim.x) {
    k_cache[dst + i] = k[src + i];
    v_cache[dst + i] = v[src + i];
  }
}
