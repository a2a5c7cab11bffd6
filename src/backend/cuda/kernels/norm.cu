// Row normalizations, one block per row, float accumulation.
#include "common.cuh"
#include "fp8_rows.cuh"
#include "q8_act.cuh"

// Each thread keeps its first PER elements in registers, all loaded before any is used (one memory latency per
// pass, not one per element: these run on a single row per decode step); rows wider than PER x blockDim go round
// again through memory. Summation order is the plain strided one either way.
#define PER 8

// W_OFFSET = 1: the weight scales as (1 + w), added in float and never rounded to T (Gemma's norms, as transformers
// computes them in float32).
#ifndef W_OFFSET
#define W_OFFSET 0
#endif
#define WEIGHT(w, i) (W_OFFSET + to_f((w)[i]))

// NORM_X = 1 (add_rms_norm): x is first normalized by its own weight xw, with the same eps and offset, and rounded to
// T before the add, exactly as rms_norm would store it (Gemma 2/3's sandwich norm of the attention or MLP output, then
// the next norm: one launch for two). 0: x is added as it is and xw is not read.
#ifndef NORM_X
#define NORM_X 0
#endif

// XQ: the RMSNorms also write their output as the next linear reads it, quantized from the ROUNDED output values,
// so bit for bit what the linear's own quantizing launch would write from the output (src/backend/cuda/x-form.ts):
// 1 = 8 bits per 32 values for the integer GEMV (q8_act.cuh's layout: levels xq, q8_scale records xs; hidden a
// multiple of 32, so at each step a warp's lanes hold one group's values and branch alike), 2 = e4m3 codes xq with a
// float scale per row xs (fp8_quantize_rows's). 0: xq and xs are not touched.
#ifndef XQ
#define XQ 0
#endif

// out[at] = y rounded to T; returns the rounded value (XQ 1: quantized with the warp's other lanes' values).
__device__ __forceinline__ float store_normed(T* __restrict__ out, long long at, float y, void* __restrict__ xq,
                                              void* __restrict__ xs) {
  const T r = from_f(y);
  out[at] = r;
  const float f = to_f(r);
#if XQ == 1
  q8_quantize_lane(f, static_cast<signed char*>(xq) + at, static_cast<q8_scale*>(xs) + (at >> 5));
#endif
  return f;
}

// The normalized value before rounding, `weight` being WEIGHT(w, i): one expression for every norm here, so the fused
// norm of x rounds the same float as rms_norm does.
__device__ __forceinline__ float normed(float v, float inv, float weight) { return v * inv * weight; }

// The weights of the thread's first PER values. The kernels load them before PDL_WAIT (weights are immutable,
// pdl.cuh), while the previous kernel finishes, rather than after the row's sum: one memory round trip less on the
// single-row decode step (two for NORM_X).
__device__ __forceinline__ void load_weights(const T* __restrict__ w, int hidden, float (&wv)[PER]) {
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * blockDim.x;
    wv[j] = i < hidden ? WEIGHT(w, i) : 0.f;
  }
}

// 1 / rms of a row whose first PER values per thread (strided by blockDim.x) are in v; the rest are read from `row`.
__device__ __forceinline__ float row_inv_rms(const T* __restrict__ row, const float (&v)[PER], int hidden, float eps) {
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < PER; j++) ss += v[j] * v[j];
  for (int i = threadIdx.x + PER * blockDim.x; i < hidden; i += blockDim.x) {
    const float a = to_f(row[i]);
    ss += a * a;
  }
  return rsqrtf(block_sum(ss) / hidden + eps);
}

// Row `row`'s output: v · inv · WEIGHT rounded to T, v being the thread's first PER values (strided by blockDim.x),
// wv their weights, and `tail` holding the rest. XQ 2 then takes the row's largest rounded magnitude (fmaxf: NaNs
// skipped, as fp8_quantize_rows does) and writes the codes from the rounded values (v's, then the tail's read back
// from out).
template <typename S>
__device__ __forceinline__ void store_row(T* __restrict__ out, const S* tail, long long row, int hidden,
                                          float (&v)[PER], float inv, const float (&wv)[PER], const T* __restrict__ w,
                                          void* __restrict__ xq, void* __restrict__ xs) {
  const long long base = row * hidden;
  const int stride = blockDim.x;
  float amax = 0.f;
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * stride;
    if (i < hidden) {
      v[j] = store_normed(out, base + i, normed(v[j], inv, wv[j]), xq, xs);
      amax = fmaxf(amax, fabsf(v[j]));
    }
  }
  for (int i = threadIdx.x + PER * stride; i < hidden; i += stride)
    amax = fmaxf(amax, fabsf(store_normed(out, base + i, normed(as_f(tail[base + i]), inv, WEIGHT(w, i)), xq, xs)));
#if XQ == 2
  const float scale = e4m3_row_scale(block_max(amax));
  unsigned char* codes = static_cast<unsigned char*>(xq) + base;
  if (threadIdx.x == 0) static_cast<float*>(xs)[row] = scale;
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * stride;
    if (i < hidden) codes[i] = e4m3_code(v[j], scale);
  }
  for (int i = threadIdx.x + PER * stride; i < hidden; i += stride) codes[i] = e4m3_code(to_f(out[base + i]), scale);
#endif
}

extern "C" __global__ void rms_norm(T* __restrict__ out, const T* __restrict__ x, const T* __restrict__ w, float eps,
                                    int hidden, void* __restrict__ xq, void* __restrict__ xs) {
  float v[PER], wv[PER];
  load_weights(w, hidden, wv);
  PDL_ENTER();
  const long long base = (long long)blockIdx.x * hidden;
  const int stride = blockDim.x;
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * stride;
    v[j] = i < hidden ? to_f(x[base + i]) : 0.f;
  }
  store_row(out, x, blockIdx.x, hidden, v, row_inv_rms(x + base, v, hidden, eps), wv, w, xq, xs);
}

// residual_out = x + residual (NORM_X: rms_norm(x, xw) + residual), out = rms_norm(residual_out). The residual stream
// is kept in float so the layers' small updates are not rounded away; RES_IN_F32 = 0 reads a first residual stored as
// T (the embeddings).
#ifndef RES_IN_F32
#define RES_IN_F32 0
#endif
#if RES_IN_F32
typedef float RIn;
#else
typedef T RIn;
#endif

// x's value as added to the residual, `weight` being WEIGHT(xw, i) (NORM_X: normalized with inv_x, rounded to T as
// rms_norm's output).
#if NORM_X
#define X_IN(a, weight) to_f(from_f(normed(a, inv_x, weight)))
#else
#define X_IN(a, weight) (a)
#endif

extern "C" __global__ void add_rms_norm(T* __restrict__ out, float* __restrict__ residual_out,
                                        const T* __restrict__ x, const RIn* __restrict__ residual,
                                        const T* __restrict__ w, const T* __restrict__ xw, float eps, int hidden,
                                        void* __restrict__ xq, void* __restrict__ xs) {
  float wv[PER];
  load_weights(w, hidden, wv);
#if NORM_X
  float xwv[PER];
  load_weights(xw, hidden, xwv);
#endif
  PDL_ENTER();
  const long long base = (long long)blockIdx.x * hidden;
  const int stride = blockDim.x;
  // Both inputs' first PER values loaded before any is used (NORM_X: before x's own sum, not after it).
  float v[PER], r[PER];
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * stride;
    v[j] = i < hidden ? to_f(x[base + i]) : 0.f;
    r[j] = i < hidden ? as_f(residual[base + i]) : 0.f;
  }
#if NORM_X
  const float inv_x = row_inv_rms(x + base, v, hidden, eps);
#endif
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < PER; j++) {
    const int i = threadIdx.x + j * stride;
    if (i < hidden) {
      v[j] = X_IN(v[j], xwv[j]) + r[j];
      residual_out[base + i] = v[j];
    }
    ss += v[j] * v[j];
  }
  for (int i = threadIdx.x + PER * stride; i < hidden; i += stride) {
    const float s = X_IN(to_f(x[base + i]), WEIGHT(xw, i)) + as_f(residual[base + i]);
    residual_out[base + i] = s;
    ss += s * s;
  }
  const float inv = rsqrtf(block_sum(ss) / hidden + eps);
  store_row(out, residual_out, blockIdx.x, hidden, v, inv, wv, w, xq, xs);
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
