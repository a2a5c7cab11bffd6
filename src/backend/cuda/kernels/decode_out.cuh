// How paged_decode.cu and paged_decode_merge.cu store a decode step's attention output.
#pragma once
#include "attention_common.cuh"
#include "q8_lane.cuh"

// XQ 1 (src/backend/cuda/x-form.ts): O is also written as q8 groups (levels xq, q8_scale records xs, laid out over
// out's rows) for the o projection's integer GEMV, from the ROUNDED values, so bit for bit its own quantizing launch:
// by the CTA with one split, else by paged_decode_merge. Needs D a multiple of 32 (a group lies within one head, and
// a warp's 32 consecutive outputs are one group) and o_stride = heads x D. 0: xq and xs are not touched.
#ifndef XQ
#define XQ 0
#endif

// out[at] = o rounded; XQ 1: the warp's 32 values (consecutive `at`, all lanes here) quantized as one group.
__device__ __forceinline__ void store_o(elem16_t* __restrict__ out, long long at, float o, signed char* __restrict__ xq,
                                        q8_scale* __restrict__ xs) {
  const elem16_t r = to_elem16(o);
  out[at] = r;
#if XQ == 1
  q8_quantize_lane(elem16_to_f(r), xq + at, xs + (at >> 5));
#endif
}
