// x [rows, k] quantized to 8 bits per 32 values for the integer decode GEMV (q8_act.cuh): a lane per 8 values.
#include "q8_act.cuh"

extern "C" __global__ void quant_act_q8(signed char* __restrict__ q, q8_scale* __restrict__ scales,
                                        const T* __restrict__ x, int groups) {
  PDL_ENTER();
  const long long chunks = 4ll * groups;
  const long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  // Whole warps take part in the shuffles: a lane past the end quantizes the last group again and writes nothing.
  q8_quantize_chunk(x, c < chunks ? c : chunks - 4 + (c & 3), q, scales, c < chunks);
}
