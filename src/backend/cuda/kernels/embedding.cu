// out[t, :] = table[index[t], :]: token embeddings (index = input ids) or learned positions (index = positions).
#include "common.cuh"

extern "C" __global__ void embedding(T* __restrict__ out, const T* __restrict__ table, const int* __restrict__ index,
                                     int hidden) {
  PDL_ENTER();
  const long long row = index[blockIdx.x];
  const T* src = table + row * hidden;
  T* dst = out + (long long)blockIdx.x * hidden;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = src[i];
}

// out[r, :] = x[rows[r], :]: the rows whose logits a step returns.
extern "C" __global__ void gather_rows(T* __restrict__ out, const T* __restrict__ x, const int* __restrict__ rows,
                                       int cols) {
  PDL_ENTER();
  const T* src = x + (long long)rows[blockIdx.x] * cols;
  T* dst = out + (long long)blockIdx.x * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) dst[i] = src[i];
}
