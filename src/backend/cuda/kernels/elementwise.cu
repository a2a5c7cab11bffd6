// Elementwise ops over n elements, grid-stride.
#include "common.cuh"
#include "fp8_rows.cuh"
#include "q8_act.cuh"

#define GRID_STRIDE(i, n) \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

// vLLM's SiluAndMul / GeluAndMul: x [rows, 2n] holds gate and up side by side; out [rows, n] = act(gate) * up
// (the activation by ACT, common.cuh).
//
// XQ (as norm.cu's, src/backend/cuda/x-form.ts): also write the output as the down projection reads it, quantized
// from the ROUNDED output values, so bit for bit what that linear's own quantizing launch would write. 1 = q8 groups
// (q8_act.cuh: levels xq, q8_scale records xs): grid-stride as the plain build, rows * n a multiple of 32 and blocks
// of whole warps, so a warp's lanes hold one 32-value group at each step; 2 = e4m3 codes xq with a float scale per
// row xs (fp8_quantize_rows's): one block per row, whose scale needs the whole row. 0: xq and xs are not touched.
#ifndef XQ
#define XQ 0
#endif

extern "C" __global__ void act_mul(T* __restrict__ out, const T* __restrict__ x, long long rows, int n,
                                   void* __restrict__ xq, void* __restrict__ xs) {
  PDL_ENTER();
#if XQ != 2
  GRID_STRIDE(i, rows * n) {
    const long long r = i / n, c = i - r * n;
    const T v = from_f(gate_act(to_f(x[2 * r * n + c])) * to_f(x[(2 * r + 1) * n + c]));
    out[i] = v;
#if XQ == 1
    q8_quantize_lane(to_f(v), static_cast<signed char*>(xq) + i, static_cast<q8_scale*>(xs) + (i >> 5));
#endif
  }
#else
  const long long r = blockIdx.x, base = r * n;
  const T* gate = x + 2 * base;
  float amax = 0.f;
  for (int c = threadIdx.x; c < n; c += blockDim.x) {
    const T v = from_f(gate_act(to_f(gate[c])) * to_f(gate[n + c]));
    out[base + c] = v;
    amax = fmaxf(amax, fabsf(to_f(v)));  // NaNs skipped, as fp8_quantize_rows does
  }
  const float scale = e4m3_row_scale(block_max(amax));
  if (threadIdx.x == 0) static_cast<float*>(xs)[r] = scale;
  // Each thread reads back the outputs it wrote itself.
  for (int c = threadIdx.x; c < n; c += blockDim.x)
    static_cast<unsigned char*>(xq)[base + c] = e4m3_code(to_f(out[base + c]), scale);
#endif
}

// splitColumns for more than one row: columns [c0, c0 + w0 + w1 + w2 + w3) of x [rows, cols] into up to four
// contiguous parts [rows, w_i] (unused parts have width 0). One launch per four parts.
extern "C" __global__ void split_columns(const T* __restrict__ x, long long rows, int cols, int c0, T* __restrict__ o0,
                                         T* __restrict__ o1, T* __restrict__ o2, T* __restrict__ o3, int w0, int w1,
                                         int w2, int w3) {
  PDL_ENTER();
  const int width = w0 + w1 + w2 + w3;
  GRID_STRIDE(i, rows * width) {
    const long long r = i / width;
    const int col = (int)(i - r * width);
    int c = col;
    T* o = o0;
    int w = w0;
    if (c >= w0) {
      c -= w0, o = o1, w = w1;
      if (c >= w1) {
        c -= w1, o = o2, w = w2;
        if (c >= w2) c -= w2, o = o3, w = w3;
      }
    }
    o[r * w + c] = x[r * cols + c0 + col];
  }
}

// A plain MLP's activation. act = 0: GELU's exact erf form; 1: its tanh form (gelu_new, gelu_pytorch_tanh);
// 2: ReLU squared (Nemotron's relu2).
extern "C" __global__ void activation(T* __restrict__ out, const T* __restrict__ x, long long n, int act) {
  PDL_ENTER();
  GRID_STRIDE(i, n) {
    const float v = to_f(x[i]);
    float y;
    if (act == 2) y = v > 0.f ? v * v : 0.f;
    else if (act == 1) y = 0.5f * v * (1.f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    else y = 0.5f * v * (1.f + erff(v * 0.7071067811865476f));
    out[i] = from_f(y);
  }
}

// b may be the float residual stream (B_F32 = 1).
#ifndef B_F32
#define B_F32 0
#endif
#if B_F32
typedef float BIn;
#else
typedef T BIn;
#endif

extern "C" __global__ void add(T* __restrict__ out, const T* __restrict__ a, const BIn* __restrict__ b, long long n) {
  PDL_ENTER();
  GRID_STRIDE(i, n) out[i] = from_f(to_f(a[i]) + as_f(b[i]));
}

// y[r, c] += bias[c] over a [rows, cols] matrix.
extern "C" __global__ void add_bias(T* __restrict__ y, const T* __restrict__ bias, long long n, int cols) {
  PDL_ENTER();
  GRID_STRIDE(i, n) y[i] = from_f(to_f(y[i]) + to_f(bias[i % cols]));
}

// Uniform values in [-scale, scale) from a hash of (seed, index): dummy weights made on the device.
extern "C" __global__ void fill_uniform(T* __restrict__ p, long long n, unsigned int seed, float scale) {
  PDL_ENTER();
  GRID_STRIDE(i, n) {
    unsigned int h = (unsigned int)i * 2654435761u ^ (unsigned int)(i >> 32) * 0x85ebca6bu ^ seed * 0x9e3779b9u;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    p[i] = from_f(((h >> 8) * (1.f / 16777216.f) * 2.f - 1.f) * scale);
  }
}

extern "C" __global__ void fill_const(T* __restrict__ p, long long n, float value) {
  PDL_ENTER();
  GRID_STRIDE(i, n) p[i] = from_f(value);
}

// x times a factor in float, which the launcher may first round to T (Backend.scale).
extern "C" __global__ void scale(T* __restrict__ out, const T* __restrict__ x, long long n, float factor) {
  PDL_ENTER();
  GRID_STRIDE(i, n) out[i] = from_f(to_f(x[i]) * factor);
}

// cap * tanh(x / cap): Gemma 2's final-logit soft-capping.
extern "C" __global__ void softcap(T* __restrict__ out, const T* __restrict__ x, long long n, float cap) {
  PDL_ENTER();
  GRID_STRIDE(i, n) out[i] = from_f(tanhf(to_f(x[i]) / cap) * cap);
}

// A cross-encoder head's activation.
extern "C" __global__ void tanh_act(T* __restrict__ out, const T* __restrict__ x, long long n) {
  PDL_ENTER();
  GRID_STRIDE(i, n) out[i] = from_f(tanhf(to_f(x[i])));
}
