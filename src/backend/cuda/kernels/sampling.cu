// Logits processing and sampling on the device, one block per sampled row (reading logits row `logit_row`), so
// only token ids go back to the host.
// Per row: a structured-output bitmask first (a cleared bit sets the logit to -inf), then logit bias and penalties (repetition over every seen token, presence/frequency by output count), then
// greedy argmax when temperature is 0; otherwise temperature, then min-p, top-k and top-p (on the mass the earlier
// cuts kept) raise a threshold, and a Gumbel-max draw over the kept tokens picks the token: argmax(x/temp + g_i) with
// g_i = -log(-log(u_i)), u_i from Philox4x32-10 keyed by the row's seed and counted by (token id, step), which is an
// exact sample of softmax restricted to the kept tokens, reproducible for a given seed and step.
#include "common.cuh"

#define THREADS 1024

struct RowParams {
  float temperature, top_p, min_p, repetition, presence, frequency;
  int top_k, seed_lo, seed_hi, step, seen_begin, seen_end, bias_begin, bias_end, logit_row, mask_row;
};

__device__ __forceinline__ unsigned int mulhi(unsigned int a, unsigned int b) { return __umulhi(a, b); }

// Philox4x32-10, first output word.
__device__ unsigned int philox(unsigned int c0, unsigned int c1, unsigned int k0, unsigned int k1) {
  unsigned int c2 = 0, c3 = 0;
#pragma unroll
  for (int r = 0; r < 10; r++) {
    const unsigned int h0 = mulhi(0xD2511F53u, c0), l0 = 0xD2511F53u * c0;
    const unsigned int h1 = mulhi(0xCD9E8D57u, c2), l1 = 0xCD9E8D57u * c2;
    const unsigned int n0 = h1 ^ c1 ^ k0, n2 = h0 ^ c3 ^ k1;
    c0 = n0; c1 = l1; c2 = n2; c3 = l0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c0;
}

// Order-preserving map of floats to unsigned keys.
__device__ __forceinline__ unsigned int fkey(float x) {
  const unsigned int u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float unkey(unsigned int k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

__device__ float block_count_ge(const float* x, int n, unsigned int key, float mx, bool mass) {
  float s = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    if (fkey(x[i]) >= key) s += mass ? expf(x[i] - mx) : 1.f;
  }
  return block_sum(s);
}

// Largest key K such that measure(x >= K) >= want, among x >= floor_key; found bit by bit.
__device__ unsigned int search_key(const float* x, int n, float want, float mx, bool mass, unsigned int floor_key) {
  unsigned int k = 0;
  for (int bit = 31; bit >= 0; bit--) {
    const unsigned int cand = k | (1u << bit);
    if (cand < floor_key) { k = cand; continue; }
    if (block_count_ge(x, n, cand, mx, mass) >= want) k = cand;
  }
  return max(k, floor_key);
}

extern "C" __global__ void __launch_bounds__(THREADS)
sample_rows(int* __restrict__ out_ids, const T* __restrict__ logits, float* __restrict__ scratch,
            const RowParams* __restrict__ params, const int* __restrict__ seen_tokens,
            const int* __restrict__ seen_counts, const int* __restrict__ bias_tokens,
            const float* __restrict__ bias_values, const unsigned int* __restrict__ masks, int mask_words,
            int vocab) {
  PDL_ENTER();
  const int row = blockIdx.x;
  const RowParams p = params[row];
  float* x = scratch + (long long)row * vocab;
  const T* src = logits + (long long)p.logit_row * vocab;
  const unsigned int* mask = p.mask_row >= 0 ? masks + (long long)p.mask_row * mask_words : nullptr;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    x[i] = (mask && ((i >> 5) >= mask_words || !((mask[i >> 5] >> (i & 31)) & 1u))) ? -INFINITY : to_f(src[i]);
  }
  __syncthreads();
  for (int j = p.bias_begin + threadIdx.x; j < p.bias_end; j += blockDim.x) x[bias_tokens[j]] += bias_values[j];
  __syncthreads();
  for (int j = p.seen_begin + threadIdx.x; j < p.seen_end; j += blockDim.x) {
    const int id = seen_tokens[j], c = seen_counts[j];
    float v = x[id];
    if (p.repetition != 1.f) v = v > 0.f ? v / p.repetition : v * p.repetition;
    v -= p.frequency * c + (c > 0 ? p.presence : 0.f);
    x[id] = v;
  }
  __syncthreads();

  __shared__ float best_v[32];
  __shared__ int best_i[32];
  const bool greedy = p.temperature <= 0.f;
  float inv_t = greedy ? 1.f : 1.f / p.temperature;
  unsigned int thr = 0;
  if (!greedy) {
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) x[i] *= inv_t;
    __syncthreads();
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) mx = fmaxf(mx, x[i]);
    mx = block_max(mx);
    // vLLM's order: min_p first (it keeps the most likely token), then top-k and top-p among what it kept.
    if (p.min_p > 0.f) thr = fkey(mx + logf(p.min_p));
    if (p.top_k > 0 && p.top_k < vocab) thr = search_key(x, vocab, (float)p.top_k, mx, false, thr);
    if (p.top_p < 1.f) {
      const float kept = block_count_ge(x, vocab, thr, mx, true);
      thr = search_key(x, vocab, p.top_p * kept, mx, true, thr);
    }
  }
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    float s = x[i];
    if (!greedy) {
      if (fkey(s) < thr) continue;
      const unsigned int r = philox((unsigned int)i, (unsigned int)p.step, (unsigned int)p.seed_lo,
                                    (unsigned int)p.seed_hi);
      const float u = ((r >> 9) + 0.5f) * (1.f / 8388608.f);  // in (0, 1), exact in float
      s -= logf(-logf(u));
    }
    if (s > bv || (s == bv && i < bi)) { bv = s; bi = i; }
  }
  // Block argmax, ties to the smaller id.
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) { best_v[warp] = bv; best_i[warp] = bi; }
  __syncthreads();
  if (warp == 0) {
    const int nw = blockDim.x >> 5;
    bv = lane < nw ? best_v[lane] : -INFINITY;
    bi = lane < nw ? best_i[lane] : 0x7fffffff;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
    }
    if (lane == 0) out_ids[row] = bi == 0x7fffffff ? 0 : bi;
  }
}
