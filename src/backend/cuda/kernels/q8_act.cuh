// Activations quantized to 8 bits for the integer GEMV (quant_act.cu writes them, quant_groups.cuh reads them):
// per 32 values, levels round(x / d) with d = amax / 127 kept in float, and the sums of each 16 levels (what the
// weights' mins multiply). The levels of a [rows, k] input lie in a [rows, k] int8 array, the scales in a
// [rows, k / 32] array of these.
#pragma once

struct __align__(8) q8_scale {
  float d;
  int sums;  // the 16-value halves' level sums as two int16: low, high
};
