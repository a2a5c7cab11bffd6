// Weight conversion at load: a chunk of a checkpoint's raw elements (uploaded as stored) written to the weight in
// the backend's storage type, transposed when asked (GPT-2's Conv1D stores [in, out]). Types are runtime codes
// (0 float, 1 half, 2 bfloat16), so one build serves every pair. Roundings mirror primitives/float-bits.ts bit for
// bit (round to nearest even; NaN to 0x7fc0 in bf16, to a quiet NaN of the same sign in half), which the host path
// used before.
#include "common.cuh"

__device__ __forceinline__ float load_as_float(const void* in, long long i, int type) {
  if (type == 0) return reinterpret_cast<const float*>(in)[i];
  const unsigned short h = reinterpret_cast<const unsigned short*>(in)[i];
  if (type == 1) return __half2float(__ushort_as_half(h));
  return __uint_as_float((unsigned int)h << 16);
}

__device__ __forceinline__ unsigned short bf16_bits(float x) {
  const unsigned int u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ unsigned short f16_bits(float x) {
  const unsigned int u = __float_as_uint(x);
  const unsigned int sign = (u >> 16) & 0x8000u;
  const int exp = (u >> 23) & 0xff;
  unsigned int mant = u & 0x7fffffu;
  if (exp == 0xff) return sign | 0x7c00u | (mant ? 0x200u : 0u);
  int e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00u;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000u;
    const int shift = 14 - e;
    const unsigned int half = 1u << (shift - 1);
    unsigned int m = mant >> shift;
    const unsigned int rest = mant & ((1u << shift) - 1u);
    if (rest > half || (rest == half && (m & 1u))) m++;
    return sign | m;
  }
  unsigned int m = mant >> 13;
  const unsigned int rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (m & 1u))) {
    m++;
    if (m == 0x400u) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00u;
    }
  }
  return sign | ((unsigned int)e << 10) | m;
}

// Elements [first, first + count) of a [rows, cols] tensor, read from `in` (the chunk) as `src_type` and written to
// `out` (the whole weight) as `dst_type`: at the same index, or at (col, row) of the [cols, rows] result.
extern "C" __global__ void convert_weight(void* __restrict__ out, const void* __restrict__ in, long long count,
                                          long long first, long long rows, long long cols, int src_type, int dst_type,
                                          int transpose) {
  PDL_ENTER();
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count; i += (long long)gridDim.x * blockDim.x) {
    const long long g = first + i;
    const long long o = transpose ? (g % cols) * rows + g / cols : g;
    if (src_type == dst_type) {  // a transpose alone moves bits (NaN payloads included)
      if (src_type == 0) reinterpret_cast<unsigned int*>(out)[o] = reinterpret_cast<const unsigned int*>(in)[i];
      else reinterpret_cast<unsigned short*>(out)[o] = reinterpret_cast<const unsigned short*>(in)[i];
      continue;
    }
    const float v = load_as_float(in, i, src_type);
    if (dst_type == 0) reinterpret_cast<float*>(out)[o] = v;
    else reinterpret_cast<unsigned short*>(out)[o] = dst_type == 1 ? f16_bits(v) : bf16_bits(v);
  }
}
