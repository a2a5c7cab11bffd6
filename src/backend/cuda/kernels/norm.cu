// Row normalizations, one block per row, float accumulation.
#include "common.cuh"

extern "C" __global__ void rms_norm(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w, float eps,
                                    int hidden) {
  const long long base = (long long)blockIdx.x * hidden;
  float ss = 0.f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float v = to_f(x[base + i]);
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss) / hidden + eps);
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[base + i] = from_f(to_f(x[base + i]) * inv * to_f(w[i]));
}

// residual_out = x + residual, out = rms_norm(residual_out). The residual stream is kept in float so the layers'
// small updates are not rounded away; RES_IN_F32 = 0 reads a first residual stored as T (the embeddings).
#ifndef RES_IN_F32
#define RES_IN_F32 0
#endif
#if RES_IN_F32
typedef float RIn;
#else
typedef T RIn;
#endif

extern "C" __global__ void add_rms_norm(T* __restrict__ out, float* __restrict__ residual_out,
                                        const T* __restrict__ x, const RIn* __restrict__ residual,
                                        const T* __restrict__ w, float eps, int hidden) {
  const long long base = (long long)blockIdx.x * hidden;
  float ss = 0.f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float r = to_f(x[base + i]) + as_f(residual[base + i]);
    residual_out[base + i] = r;
    ss += r * r;
  }
  const float inv = rsqrtf(block_sum(ss) / hidden + eps);
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    out[base + i] = from_f(residual_out[base + i] * inv * to_f(w[i]));
  }
}

extern "C" __global__ void layer_norm(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w,
                                      const T* __restrict__ b, float eps, int hidden) {
  const long long base = (long long)blockIdx.x * hidden;
  float s = 0.f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) s += to_f(x[base + i]);
  const float mean = block_sum(s) / hidden;
  float ss = 0.f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float d = to_f(x[base + i]) - mean;
    ss += d * d;
  }
  const float inv = rsqrtf(block_sum(ss) / hidden + eps);
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    out[base + i] = from_f((to_f(x[base + i]) - mean) * inv * to_f(w[i]) + to_f(b[i]));
  }
}
