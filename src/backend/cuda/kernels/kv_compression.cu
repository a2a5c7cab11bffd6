// SnapKV compression of the paged KV cache (the CPU twin: src/backend/cpu/kv-compression.ts).
//   plans [P, 4]: the step's sequence index, window, budget, and the offset of the plan's scores ([Hk, keys] floats,
//   keys = context_lens[seq] - window: the keys before the window).
// snapkv_scores: raw[g, j] = sum over the window's query rows and KV head g's query heads of exp(q.k_j * scale - lse),
// the attention probability the flash prefill's LSE gives; causal, and a sliding window when there is one.
// snapkv_pool: scores max-pooled over the POOL neighbouring keys (within the keys before the window).
// kv_move: compaction. Entry keep[i] of each (plan, KV head) moves to entry i; in place those moves
// race (a thread may overwrite an entry another still reads), so the kept rows go through a scratch buffer.
// A quantized cache (PAGODA_KV_QUANT, kv_quant.cuh): the scores dequantize K; compaction moves the stored bytes and,
// for q8_0, each head's scales (whole blocks of 32: head_dim is a multiple of 32).
#include "kv_read.cuh"

#ifndef POOL
#define POOL 7
#endif

__device__ __forceinline__ long long slot_of(const int* table, int j, int block_size) {
  return (long long)table[j / block_size] * block_size + j % block_size;
}

// Grid (key blocks, Hk, P), one thread per key: it walks the window's queries (read by every thread at once).
extern "C" __global__ void snapkv_scores(float* __restrict__ raw, const T* __restrict__ q, const float* __restrict__ lse,
                                         const kv_t* __restrict__ k_cache, const int* __restrict__ plans,
                                         const int* __restrict__ cu_seqlens_q, const int* __restrict__ context_lens,
                                         const int* __restrict__ block_tables, int max_blocks, int block_size,
                                         int num_q_heads, int num_kv_heads, int head_dim, float scale,
                                         int sliding_window, const unsigned short* __restrict__ k_scales,
                                         float k_scale) {
  PDL_ENTER();
  const int* plan = plans + 4 * blockIdx.z;
  const int s = plan[0], window = plan[1];
  const int keys = context_lens[s] - window;
  const int j = blockIdx.x * blockDim.x + threadIdx.x, g = blockIdx.y;
  if (j >= keys) return;
  const int group = num_q_heads / num_kv_heads;
  const long long head_row = slot_of(block_tables + (long long)s * max_blocks, j, block_size) * num_kv_heads + g;
  const long long k = head_row * head_dim;
  const int q_end = cu_seqlens_q[s + 1];
  float sum = 0.f;
  for (int i = 0; i < window; i++) {
    const int row = q_end - window + i, pos = keys + i;
    if (sliding_window > 0 && j < pos - sliding_window + 1) continue;
    for (int h = g * group; h < (g + 1) * group; h++) {
      const T* qr = q + ((long long)row * num_q_heads + h) * head_dim;
      float dot = 0.f;
      for (int d = 0; d < head_dim; d++) dot += to_f(qr[d]) * kv_value(k_cache, k_scales, k_scale, k + d);
      sum += expf(dot * scale - lse[(long long)row * num_q_heads + h]);
    }
  }
  raw[plan[3] + (long long)g * keys + j] = sum;
}

// Grid (key blocks, Hk, P).
extern "C" __global__ void snapkv_pool(float* __restrict__ out, const float* __restrict__ raw,
                                       const int* __restrict__ plans, const int* __restrict__ context_lens) {
  PDL_ENTER();
  const int* plan = plans + 4 * blockIdx.z;
  const int keys = context_lens[plan[0]] - plan[1];
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= keys) return;
  const long long base = plan[3] + (long long)blockIdx.y * keys;
  float m = raw[base + j];
  for (int n = max(0, j - POOL / 2); n <= min(keys - 1, j + POOL / 2); n++) m = fmaxf(m, raw[base + n]);
  out[base + j] = m;
}

// plans here: [P, 4] = sequence, budget, offset of the plan's keep ([Hk, budget]), offset of its scratch rows.
// Grid (entries of the largest budget, Hk, P), head_dim threads per entry. SCATTER = 0 copies cache -> scratch,
// SCATTER = 1 scratch -> cache.
#ifndef SCATTER
#define SCATTER 0
#endif
extern "C" __global__ void kv_move(kv_t* __restrict__ k_cache, kv_t* __restrict__ v_cache, kv_t* __restrict__ scratch,
                                   const int* __restrict__ keep, const int* __restrict__ plans,
                                   const int* __restrict__ block_tables, int max_blocks, int block_size,
                                   int num_kv_heads, int head_dim, unsigned short* __restrict__ k_scales,
                                   unsigned short* __restrict__ v_scales, unsigned short* __restrict__ scale_scratch) {
  PDL_ENTER();
  const int* plan = plans + 4 * blockIdx.z;
  const int budget = plan[1], i = blockIdx.x, g = blockIdx.y;
  if (i >= budget) return;
  const int* table = block_tables + (long long)plan[0] * max_blocks;
  const int entry = SCATTER ? i : keep[plan[2] + g * budget + i];
  const long long at = (slot_of(table, entry, block_size) * num_kv_heads + g) * head_dim;
  // Scratch rows: K then V of each (head, entry), head_dim each.
  const long long entry_row = (long long)plan[3] + (long long)g * budget + i;
  kv_t* row = scratch + entry_row * 2 * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    if (SCATTER) {
      k_cache[at + d] = row[d];
      v_cache[at + d] = row[head_dim + d];
    } else {
      row[d] = k_cache[at + d];
      row[head_dim + d] = v_cache[at + d];
    }
  }
#if PAGODA_KV_QUANT == KV_Q8_0
  // The head's q8_0 scales, K then V, through their own scratch rows.
  const int n = head_dim / KV_Q8_BLOCK;
  const long long sat = at / KV_Q8_BLOCK;
  unsigned short* srow = scale_scratch + entry_row * 2 * n;
  for (int b = threadIdx.x; b < n; b += blockDim.x) {
    if (SCATTER) {
      k_scales[sat + b] = srow[b];
      v_scales[sat + b] = srow[n + b];
    } else {
      srow[b] = k_scales[sat + b];
      srow[n + b] = v_scales[sat + b];
    }
  }
#endif
}
