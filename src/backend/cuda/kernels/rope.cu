// Rotary position embedding, in place on q [T, Hq*D] and k [T, Hk*D]; one warp per (token, head), q heads first.
// neox = 1 rotates pairs (i, i + rot/2) (HF Llama); 0 rotates (2i, 2i + 1) (GPT-J). Only the first rot dims turn.
// With norm weights (q_norm non-null: Qwen3's and Gemma 3's q_norm / k_norm, [D] each) the head is first
// RMS-normalized in place, by (weight_offset + w): Gemma's 1 + w. With a cache (k_cache non-null) a k head's warp then
// writes its rotated k and the head's v to the paged cache at slot_mapping[t] (-1 skipped), as reshape_and_cache
// does: one launch per layer for the head norms, RoPE and the cache write.
#include "rope_pair.cuh"

// A head's values per lane held in registers while its sum of squares is taken; longer heads go round through memory.
#define PER 8
// Values per lane whose loads are all issued before the first is used (the rotation's pairs: CHUNK / 2 per lane; the
// cache write's v and unrotated k: CHUNK): one memory latency per head of up to 256 dims, not one per value.
#define CHUNK 8

// v's dims [d0, d0 + 32 CHUNK) of this lane into vv, and k's (x's) unturned ones (>= turned) into kt.
__device__ __forceinline__ void load_chunk(const T* __restrict__ v, const T* __restrict__ x, int d0, int head_dim,
                                           int turned, int lane, T (&vv)[CHUNK], T (&kt)[CHUNK]) {
#pragma unroll
  for (int j = 0; j < CHUNK; j++) {
    const int d = d0 + lane + 32 * j;
    if (d < head_dim) vv[j] = v[d];
    if (d < head_dim && d >= turned) kt[j] = x[d];
  }
}

// RMSNorm of the warp's head x[0, D) in place, bit for bit what norm.cu's rms_norm writes for a row of up to
// 32 * PER values (rowThreads gives it one warp there): the same per-lane strided sum of squares, warp sum, rsqrtf
// and rounding of x * inv * weight to T.
__device__ __forceinline__ void norm_head(T* __restrict__ x, const T* __restrict__ w, float weight_offset,
                                          float eps, int head_dim, int lane) {
  float v[PER];
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = lane + j * 32;
    v[j] = i < head_dim ? to_f(x[i]) : 0.f;
  }
#pragma unroll
  for (int j = 0; j < PER; j++) ss += v[j] * v[j];
  for (int i = lane + PER * 32; i < head_dim; i += 32) {
    const float a = to_f(x[i]);
    ss += a * a;
  }
  const float inv = rsqrtf(warp_sum(ss) / head_dim + eps);
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = lane + j * 32;
    if (i < head_dim) x[i] = from_f(v[j] * inv * (weight_offset + to_f(w[i])));
  }
  for (int i = lane + PER * 32; i < head_dim; i += 32)
    x[i] = from_f(to_f(x[i]) * inv * (weight_offset + to_f(w[i])));
}

extern "C" __global__ void rope(T* __restrict__ q, T* __restrict__ k, const int* __restrict__ positions,
                                const float* __restrict__ inv_freq, int num_q_heads, int num_kv_heads, int head_dim,
                                int rot, int neox, float mscale, int num_tokens, const T* __restrict__ q_norm,
                                const T* __restrict__ k_norm, float weight_offset, float eps,
                                const T* __restrict__ v, T* __restrict__ k_cache, T* __restrict__ v_cache,
                                const int* __restrict__ slot_mapping) {
  const int lane = threadIdx.x & 31;
  const int half_rot = rot / 2;
  // The first chunk's frequencies load before the wait: inv_freq is immutable (pdl.cuh).
  float f0[CHUNK / 2];
#pragma unroll
  for (int j = 0; j < CHUNK / 2; j++) {
    const int i = lane + 32 * j;
    if (i < half_rot) f0[j] = inv_freq[i];
  }
  PDL_ENTER();
  const int heads = num_q_heads + num_kv_heads;
  const long long g = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (g >= (long long)num_tokens * heads) return;
  const int t = (int)(g / heads), head = (int)(g % heads);
  const bool is_q = head < num_q_heads;
  const int kv_head = head - num_q_heads;
  T* x = is_q ? q + ((long long)t * num_q_heads + head) * head_dim
              : k + ((long long)t * num_kv_heads + kv_head) * head_dim;
  const float pos = (float)positions[t];  // read before the norm, so the loads overlap
  const long long slot = is_q || k_cache == nullptr ? -1 : slot_mapping[t];
  if (q_norm != nullptr) {
    norm_head(x, is_q ? q_norm : k_norm, weight_offset, eps, head_dim, lane);
    __syncwarp();  // the pairs below read values other lanes normalized
  }
  // A k head bound for the cache: v's first CHUNK values per lane and k's unrotated dims are loaded before the
  // rotation, so their latency overlaps its loads; the rotated k is stored from registers.
  const long long src = ((long long)t * num_kv_heads + kv_head) * head_dim;
  const long long dst = (slot * num_kv_heads + kv_head) * head_dim;
  T* kc = slot >= 0 ? k_cache + dst : nullptr;
  T* vc = slot >= 0 ? v_cache + dst : nullptr;
  T vv[CHUNK], kt[CHUNK];
  // Dims from 2 * half_rot on are not turned (an odd rot's last dim included, as gemv_rope.cuh passes it through).
  const int turned = 2 * half_rot;
  if (slot >= 0) load_chunk(v + src, x, 0, head_dim, turned, lane, vv, kt);
  for (int i0 = 0; i0 < half_rot; i0 += 32 * CHUNK / 2) {
    float f[CHUNK / 2], x0[CHUNK / 2], x1[CHUNK / 2];
#pragma unroll
    for (int j = 0; j < CHUNK / 2; j++) {
      const int i = i0 + lane + 32 * j;
      if (i < half_rot) {
        f[j] = i0 == 0 ? f0[j] : inv_freq[i];
        x0[j] = to_f(x[pair_a(i, neox)]);
        x1[j] = to_f(x[pair_b(i, half_rot, neox)]);
      }
    }
#pragma unroll
    for (int j = 0; j < CHUNK / 2; j++) {
      const int i = i0 + lane + 32 * j;
      if (i < half_rot) {
        const int a = pair_a(i, neox), b = pair_b(i, half_rot, neox);
        T ra, rb;
        rotate_pair(x0[j], x1[j], pos, f[j], mscale, ra, rb);
        x[a] = ra;
        x[b] = rb;
        if (slot >= 0) {
          kc[a] = ra;
          kc[b] = rb;
        }
      }
    }
  }
  if (slot < 0) return;
  for (int d0 = 0; d0 < head_dim; d0 += 32 * CHUNK) {
    if (d0 > 0) load_chunk(v + src, x, d0, head_dim, turned, lane, vv, kt);
#pragma unroll
    for (int j = 0; j < CHUNK; j++) {
      const int d = d0 + lane + 32 * j;
      if (d < head_dim) {
        vc[d] = vv[j];
        if (d >= turned) kc[d] = kt[j];
      }
    }
  }
}
