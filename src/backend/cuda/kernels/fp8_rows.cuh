// FP8 e4m3 rows with one float32 scale per row (src/primitives/fp8.ts quantizeFp8Rows): the arithmetic shared by
// fp8_quantize_rows (fp8_weights.cu: weights at load, activations per token) and the RMSNorms that write their output
// so (norm.cu XQ 2), so that both give the same bits.
#pragma once
#include "e4m3.cuh"

// A row's scale from its largest magnitude (NaNs skipped): that value maps to 448; a row of zeros takes 1.
__device__ __forceinline__ float e4m3_row_scale(float amax) { return amax > 0.f ? __fdiv_rn(amax, 448.f) : 1.f; }

// A value's code under its row's scale: divided in float32, then rounded to e4m3.
__device__ __forceinline__ unsigned char e4m3_code(float x, float scale) { return e4m3_bits(__fdiv_rn(x, scale)); }
