// Pooling models' heads: one row per sequence from its token rows, and L2 normalization. Float accumulation.
#include "common.cuh"

// The modes of src/primitives/pooling.ts, in the launcher's numbering.
#define POOL_CLS 0
#define POOL_LAST 1
#define POOL_MEAN 2
#define POOL_MAX 3
#define POOL_MEAN_SQRT_LEN 4
#define POOL_WEIGHTED_MEAN 5

// out[s, c] pools x[cu_seqlens[s] .. cu_seqlens[s + 1], c] (a sequence's rows of [T, hidden]). Grid: (sequence,
// column block); each thread owns one column, so every token row is read coalesced.
extern "C" __global__ void pool_rows(T* __restrict__ out, const T* __restrict__ x, const int* __restrict__ cu_seqlens,
                                     int hidden, int mode) {
  PDL_ENTER();
  const int s = blockIdx.x;
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= hidden) return;
  const int start = cu_seqlens[s];
  const int len = cu_seqlens[s + 1] - start;
  const T* col = x + (long long)start * hidden + c;
  float v;
  if (mode == POOL_CLS || mode == POOL_LAST) {
    v = to_f(col[mode == POOL_CLS ? 0 : (long long)(len - 1) * hidden]);
  } else if (mode == POOL_MAX) {
    v = -INFINITY;
    for (int t = 0; t < len; t++) v = fmaxf(v, to_f(col[(long long)t * hidden]));
  } else {
    float sum = 0.f;
    float weights = 0.f;
    for (int t = 0; t < len; t++) {
      const float w = mode == POOL_WEIGHTED_MEAN ? (float)(t + 1) : 1.f;
      sum += w * to_f(col[(long long)t * hidden]);
      weights += w;
    }
    v = sum / (mode == POOL_MEAN_SQRT_LEN ? sqrtf((float)len) : weights);
  }
  out[(long long)s * hidden + c] = from_f(v);
}

// out[r, :] = x[r, :] / max(||x[r, :]||, 1e-12) (torch's F.normalize), one block per row.
extern "C" __global__ void l2_normalize(T* __restrict__ out, const T* __restrict__ x, int hidden) {
  PDL_ENTER();
  const long long base = (long long)blockIdx.x * hidden;
  float ss = 0.f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float a = to_f(x[base + i]);
    ss += a * a;
  }
  const float inv = 1.f / fmaxf(sqrtf(block_sum(ss)), 1e-12f);
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[base + i] = from_f(to_f(x[base + i]) * inv);
}
