// Row normalizations, one block per row, float accumulation.
#include "common.cuh"

// Each thread keeps its first PER elements in registers, all loaded before any is used (one memory latency per
// pass, not one per element: these run on a single row per decode step); rows wider than PER x blockDim go round
// again through memory. Summation order is the plain strided one either way.
#define PER 8

// W_OFFSET = 1: the weight scales as (1 + w), added in float and never rounded to T (Gemma's norms, as transformers
// computes them in float32).
#ifndef W_OFFSET
#define W_OFFSET 0
#endif
#define WEIGHT(i) (W_OFFSET + to_f(w[i]))

extern "C" __global__ void rms_norm(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w, float eps,
                                    int hidden) {
  PDL_ENTER();
  const long long base = (long long)blockIdx.x * hidden;
  const int stride = blockDim.x;
  float v[PER];
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * stride;
    v[j] = i < hidden ? to_f(x[base + i]) : 0.f;
  }
#pragma unroll
  for (int j = 0; j < PER; j++) ss += v[j] * v[j];
  for (int i = threadIdx.x + PER * stride; i < hidden; i += stride) {
    const float a = to_f(x[base + i]);
    ss += a * a;
  }
  const float inv = rsqrtf(block_sum(ss) / hidden + eps);
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * stride;
    if (i < hidden) out[base + i] = from_f(v[j] * inv * WEIGHT(i));
  }
  for (int i = threadIdx.x + PER * stride; i < hidden; i += stride)
    out[base + i] = from_f(to_f(x[base + i]) * inv * WEIGHT(i));
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
  PDL_ENTER();
  const long long base = (long long)blockIdx.x * hidden;
  const int stride = blockDim.x;
  float v[PER];
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * stride;
    v[j] = i < hidden ? to_f(x[base + i]) + as_f(residual[base + i]) : 0.f;
  }
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * stride;
    if (i < hidden) residual_out[base + i] = v[j];
    ss += v[j] * v[j];
  }
  for (int i = threadIdx.x + PER * stride; i < hidden; i += stride) {
    const float r = to_f(x[base + i]) + as_f(residual[base + i]);
    residual_out[base + i] = r;
    ss += r * r;
  }
  const float inv = rsqrtf(block_sum(ss) / hidden + eps);
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * stride;
    if (i < hidden) out[base + i] = from_f(v[j] * inv * WEIGHT(i));
  }
  for (int i = threadIdx.x + PER * stride; i < hidden; i += stride) {
    out[base + i] = from_f(residual_out[base + i] * inv * WEIGHT(i));
  }
}

extern "C" __global__ void layer_norm(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w,
                                      const T* __restrict__ b, float eps, int hidden) {
  PDL_ENTER();
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
