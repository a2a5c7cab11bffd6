// One 32-value group of activations quantized to 8 bits (q8_act.cuh): its scale and level sums. Its own header so
// that quant_groups.cuh builds for the host without CUDA's headers.
#pragma once

struct __align__(8) q8_scale {
  float d;
  int sums;  // the 16-value halves' level sums as two int16: low, high
};
