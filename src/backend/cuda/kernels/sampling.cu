// Logits processing and sampling on the device, so only token ids go back to the host. One launch, grid [rows,
// slices] of 1024-thread blocks, each row reading logits row `logit_row`.
// Per token: a structured-output bitmask first (a cleared bit sets the logit to -inf), then logit bias and penalties
// (repetition over every seen token, presence/frequency by output count); greedy argmax when temperature is 0;
// otherwise temperature, then min-p, top-k and top-p (on the mass the earlier cuts kept) raise a threshold, and a
// Gumbel-max draw over the kept tokens picks the token: argmax(x/temp + g_i) with g_i = -log(-log(u_i)), u_i from
// Philox4x32-10 keyed by the row's seed and counted by (token id, step), which is an exact sample of softmax
// restricted to the kept tokens, reproducible for a given seed and step.
// A row with no threshold to find (greedy, or no min-p / top-k / top-p: the default) is split over the launch's
// slices: block (row, s) scores vocabulary slice s in shared memory and leaves its best (value, id) in `partials`;
// the row's last block to finish (its counter in `done`, set back to 0 for the next launch) picks the best of them.
// A row with a threshold needs its whole row at once: block (row, 0) does it all in the `scratch` row, the row's
// other blocks return at once. Both paths compute every token's value with the same code, and the best (value, id)
// with ties to the smaller id is the same whatever the split, so the ids do not depend on it.
#include "common.cuh"

#define THREADS 1024
#define NO_ID 0x7fffffff

struct RowParams {
  float temperature, top_p, min_p, repetition, presence, frequency;
  int top_k, seed_lo, seed_hi, step, seen_begin, seen_end, bias_begin, bias_end, logit_row, mask_row;
};

// What the per-token code reads of a row besides its RowParams.
struct RowInputs {
  const T* logits;
  const unsigned int* mask;  // nullptr: no mask
  int mask_words;
  const int *seen_tokens, *seen_counts, *bias_tokens;
  const float* bias_values;
};

// Whether the row cuts its tokens by a threshold over the whole row (a greedy row never does).
__device__ __forceinline__ bool needs_threshold(const RowParams& p, int vocab) {
  return p.temperature > 0.f && (p.min_p > 0.f || (p.top_k > 0 && p.top_k < vocab) || p.top_p < 1.f);
}

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

// Token i's Gumbel-perturbed score from its temperature-scaled logit. Every caller scales with __fmul_rn, a product
// rounded on its own and never fused with this subtraction, whether it went through memory first or not.
__device__ __forceinline__ float gumbel_score(float scaled, int i, const RowParams& p) {
  const unsigned int r =
      philox((unsigned int)i, (unsigned int)p.step, (unsigned int)p.seed_lo, (unsigned int)p.seed_hi);
  const float u = ((r >> 9) + 0.5f) * (1.f / 8388608.f);  // in (0, 1), exact in float
  return scaled - logf(-logf(u));
}

// x[i - lo] = the masked logit of each token i in [lo, hi), then the row's bias and penalties on the ids in that
// range (each list is short; seen ids are unique, so no two threads touch one token). Block-wide; ends synced.
__device__ void processed_logits(float* x, int lo, int hi, const RowParams& p, const RowInputs& in) {
  for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const bool banned = in.mask && ((i >> 5) >= in.mask_words || !((in.mask[i >> 5] >> (i & 31)) & 1u));
    x[i - lo] = banned ? -INFINITY : to_f(in.logits[i]);
  }
  __syncthreads();
  for (int j = p.bias_begin + threadIdx.x; j < p.bias_end; j += blockDim.x) {
    const int id = in.bias_tokens[j];
    if (id >= lo && id < hi) x[id - lo] += in.bias_values[j];
  }
  __syncthreads();
  for (int j = p.seen_begin + threadIdx.x; j < p.seen_end; j += blockDim.x) {
    const int id = in.seen_tokens[j], c = in.seen_counts[j];
    if (id < lo || id >= hi) continue;
    // The roundings spelled out (a product on its own, frequency · count + presence fused), so no copy of this code
    // can be contracted differently.
    float v = x[id - lo];
    if (p.repetition != 1.f) v = v > 0.f ? v / p.repetition : __fmul_rn(v, p.repetition);
    v -= __fmaf_rn(p.frequency, (float)c, c > 0 ? p.presence : 0.f);
    x[id - lo] = v;
  }
  __syncthreads();
}

// Keeps the better of (bv, bi) and (v, i): the larger value, ties to the smaller id; NaN never wins.
__device__ __forceinline__ void keep_best(float& bv, int& bi, float v, int i) {
  if (v > bv || (v == bv && i < bi)) { bv = v; bi = i; }
}

// The block's best (value, id) in thread 0.
__device__ void block_best(float& bv, int& bi) {
  __shared__ float best_v[32];
  __shared__ int best_i[32];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    keep_best(bv, bi, __shfl_xor_sync(0xffffffffu, bv, o), __shfl_xor_sync(0xffffffffu, bi, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) { best_v[warp] = bv; best_i[warp] = bi; }
  __syncthreads();
  if (warp == 0) {
    const int nw = blockDim.x >> 5;
    bv = lane < nw ? best_v[lane] : -INFINITY;
    bi = lane < nw ? best_i[lane] : NO_ID;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
      keep_best(bv, bi, __shfl_xor_sync(0xffffffffu, bv, o), __shfl_xor_sync(0xffffffffu, bi, o));
  }
}

// Order-preserving map of floats to unsigned keys.
__device__ __forceinline__ unsigned int fkey(float x) {
  const unsigned int u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
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

// A thresholded row's best token, in thread 0; x is the row's scratch, vocab floats.
__device__ int sample_whole_row(float* x, int vocab, const RowParams& p, const RowInputs& in) {
  processed_logits(x, 0, vocab, p, in);
  const float inv_t = 1.f / p.temperature;
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    x[i] = __fmul_rn(x[i], inv_t);
    mx = fmaxf(mx, x[i]);
  }
  mx = block_max(mx);
  // vLLM's order: min_p first (it keeps the most likely token), then top-k and top-p among what it kept.
  unsigned int thr = 0;
  if (p.min_p > 0.f) thr = fkey(mx + logf(p.min_p));
  if (p.top_k > 0 && p.top_k < vocab) thr = search_key(x, vocab, (float)p.top_k, mx, false, thr);
  if (p.top_p < 1.f) {
    const float kept = block_count_ge(x, vocab, thr, mx, true);
    thr = search_key(x, vocab, p.top_p * kept, mx, true, thr);
  }
  float bv = -INFINITY;
  int bi = NO_ID;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    if (fkey(x[i]) >= thr) keep_best(bv, bi, gumbel_score(x[i], i, p), i);
  block_best(bv, bi);
  return bi;
}

// The best (value, id) of tokens [lo, hi) of a row without threshold, in thread 0; x holds hi - lo floats. A row
// with nothing to apply to its logits first (no mask, bias or seen tokens: plain sampling, the common case) scores
// them as it reads them, skipping the shared-memory pass and its three barriers; the values are the same.
__device__ void best_of_slice(float* x, int lo, int hi, const RowParams& p, const RowInputs& in, float& bv, int& bi) {
  const bool plain = !in.mask && p.bias_begin == p.bias_end && p.seen_begin == p.seen_end;
  if (!plain) processed_logits(x, lo, hi, p, in);
  const bool greedy = p.temperature <= 0.f;
  const float inv_t = greedy ? 1.f : 1.f / p.temperature;
  bv = -INFINITY;
  bi = NO_ID;
  for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const float v = plain ? to_f(in.logits[i]) : x[i - lo];
    keep_best(bv, bi, greedy ? v : gumbel_score(__fmul_rn(v, inv_t), i, p), i);
  }
  block_best(bv, bi);
}

// Launch: grid [rows, slices], THREADS per block, slice * 4 bytes of dynamic shared memory. `partials` holds rows
// x slices (value bits, id) pairs, `done` one zeroed counter per row, `scratch` rows x vocab floats.
extern "C" __global__ void __launch_bounds__(THREADS)
sample_rows(int* __restrict__ out_ids, const T* __restrict__ logits, float* __restrict__ scratch,
            int2* __restrict__ partials, unsigned int* __restrict__ done, const RowParams* __restrict__ params,
            const int* __restrict__ seen_tokens, const int* __restrict__ seen_counts,
            const int* __restrict__ bias_tokens, const float* __restrict__ bias_values,
            const unsigned int* __restrict__ masks, int mask_words, int vocab, int slice) {
  PDL_ENTER();
  extern __shared__ float slice_x[];
  __shared__ bool last;
  const int row = blockIdx.x, s = blockIdx.y, slices = gridDim.y;
  const RowParams& p = params[row];
  const RowInputs in = {logits + (long long)p.logit_row * vocab,
                        p.mask_row >= 0 ? masks + (long long)p.mask_row * mask_words : nullptr,
                        mask_words, seen_tokens, seen_counts, bias_tokens, bias_values};
  if (needs_threshold(p, vocab)) {
    if (s != 0) return;
    const int bi = sample_whole_row(scratch + (long long)row * vocab, vocab, p, in);
    if (threadIdx.x == 0) out_ids[row] = bi == NO_ID ? 0 : bi;
    return;
  }
  const int lo = s * slice;
  float bv;
  int bi;
  best_of_slice(slice_x, lo, min(lo + slice, vocab), p, in, bv, bi);
  int2* row_partials = partials + (long long)row * slices;
  if (threadIdx.x == 0) {
    row_partials[s] = make_int2(__float_as_int(bv), bi);
    __threadfence();
    last = atomicAdd(&done[row], 1u) == (unsigned int)slices - 1;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  bv = -INFINITY;
  bi = NO_ID;
  for (int k = threadIdx.x; k < slices; k += blockDim.x) {
    const int2 b = __ldcg(&row_partials[k]);
    keep_best(bv, bi, __int_as_float(b.x), b.y);
  }
  block_best(bv, bi);
  if (threadIdx.x == 0) {
    out_ids[row] = bi == NO_ID ? 0 : bi;
    done[row] = 0;
  }
}
