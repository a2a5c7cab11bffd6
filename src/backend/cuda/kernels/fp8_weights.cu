// FP8 e4m3 matrices with one float32 scale per row (src/backend/cuda/fp8.ts launches these).
// fp8_quantize_rows: a block per row: the row's largest magnitude gives its scale amax / 448 (1 for an all-zero row),
// then each value divided by the scale in float32 and rounded to e4m3, exactly as src/primitives/fp8.ts
// quantizeFp8Rows does: weights at load (per output row), activations before the FP8 GEMM and GEMV (per token).
// fp8_scale_rows: the FP8 GEMM's epilogue: cuBLASLt's unscaled product (bf16) times the token's and the output
// feature's scales, plus bias (null: none), rounded once to T.
// Needs cols to be a multiple of 16 (16 codes per 16-byte store, 8 outputs per thread; the launcher checks).
#include "common.cuh"
#include "fp8_rows.cuh"

extern "C" __global__ void fp8_quantize_rows(unsigned char* __restrict__ codes, float* __restrict__ scales,
                                             const T* __restrict__ x, int cols) {
  const long long row = blockIdx.x;
  const T* xr = x + row * cols;
  PDL_ENTER();
  float amax = 0.f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) amax = fmaxf(amax, fabsf(to_f(xr[j])));
  amax = block_max(amax);
  const float scale = e4m3_row_scale(amax);
  if (threadIdx.x == 0) scales[row] = scale;
  uint4* out = reinterpret_cast<uint4*>(codes + row * cols);
  for (int v = threadIdx.x; v < cols / 16; v += blockDim.x) {
    unsigned words[4];
#pragma unroll
    for (int w = 0; w < 4; w++) {
      unsigned word = 0;
#pragma unroll
      for (int b = 0; b < 4; b++) {
        word |= (unsigned)e4m3_code(to_f(xr[v * 16 + w * 4 + b]), scale) << (8 * b);
      }
      words[w] = word;
    }
    out[v] = make_uint4(words[0], words[1], words[2], words[3]);
  }
}

// A block per (row, 8 x blockDim.x columns); 8 consecutive columns per thread, as one 16-byte load of acc.
extern "C" __global__ void fp8_scale_rows(T* __restrict__ y, const __nv_bfloat16* __restrict__ acc,
                                          const float* __restrict__ rowScales, const float* __restrict__ colScales,
                                          const T* __restrict__ bias, int cols) {
  PDL_ENTER();
  const long long row = blockIdx.x;
  const int c0 = (blockIdx.y * blockDim.x + threadIdx.x) * 8;
  if (c0 >= cols) return;
  const uint4 packed = *reinterpret_cast<const uint4*>(acc + row * cols + c0);
  const __nv_bfloat16* a = reinterpret_cast<const __nv_bfloat16*>(&packed);
  const float rs = rowScales[row];
  __align__(16) T out[8];
#pragma unroll
  for (int e = 0; e < 8; e++) {
    const float v = __bfloat162float(a[e]) * (rs * colScales[c0 + e]);
    out[e] = from_f(bias ? v + to_f(bias[c0 + e]) : v);
  }
  uint4* dst = reinterpret_cast<uint4*>(y + row * cols + c0);
#pragma unroll
  for (int q = 0; q < (int)(8 * sizeof(T) / 16); q++) dst[q] = reinterpret_cast<const uint4*>(out)[q];
}
