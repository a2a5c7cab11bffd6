// Writes this step's K and V rows [T, Hk*D] into the paged cache ([blocks, block_size, Hk, D], so a slot is one
// contiguous row of Hk*D). Slot -1 (padding) is skipped.
#include "common.cuh"

extern "C" __global__ void reshape_and_cache(const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ k_cache,
                                             T* __restrict__ v_cache, const int* __restrict__ slot_mapping,
                                             int row) {
  PDL_ENTER();
  const long long slot = slot_mapping[blockIdx.x];
  if (slot < 0) return;
  const long long src = (long long)blockIdx.x * row, dst = slot * row;
  for (int i = threadIdx.x; i < row; i += blockDim.x) {
    k_cache[dst + i] = k[src + i];
    v_cache[dst + i] = v[src + i];
  }
}
