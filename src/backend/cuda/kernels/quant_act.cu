// x [rows, k] quantized to 8 bits per 32 values for the integer decode GEMV (q8_act.cuh's layout): a warp per group,
// a lane per value. The arithmetic is src/backend/cpu/quant-act.ts's q8 levels (its CPU twin): d = amax / 127 and
// its reciprocal rounded as IEEE float division, levels rounded half away from zero.
#include "common.cuh"
#include "q8_act.cuh"

extern "C" __global__ void quant_act_q8(signed char* __restrict__ q, q8_scale* __restrict__ scales,
                                        const T* __restrict__ x, int groups) {
  PDL_ENTER();
  const int lane = threadIdx.x & 31;
  const long long group = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (group >= groups) return;
  const float v = to_f(x[group * 32 + lane]);
  const float d = __fdiv_rn(warp_max(fabsf(v)), 127.f);
  const float id = d != 0.f ? __fdiv_rn(1.f, d) : 0.f;
  const int level = (int)roundf(__fmul_rn(v, id));
  q[group * 32 + lane] = (signed char)level;
  int half = level;
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) half += __shfl_xor_sync(0xffffffffu, half, o);
  const int high = __shfl_sync(0xffffffffu, half, 16);
  if (lane == 0) scales[group] = {d, (half & 0xFFFF) | (high << 16)};
}
