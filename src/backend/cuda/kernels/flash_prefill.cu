// FlashAttention-2-style prefill over the paged KV cache, bf16 in, fp32 accumulate (mma.sync m16n8k16).
//
// One CTA per (m-block, KV head, sequence). The m-block's 128 rows are (query token, head of the GQA group) pairs,
// row R = token * G + g, so every K/V tile is loaded once for all G query heads that share it. All keys, this
// chunk's and the earlier context alike, are read from the paged cache through the block table: chunked prefill and
// prefix-cache hits are the same case. Query token i of a sequence with q_len queries and ctx keys sits at position
// ctx - q_len + i and sees keys j <= pos (and j > pos - window when a sliding window is set).
// Outputs O (bf16, [T, Hq*D] with row stride o_stride) and the natural-log LSE of scale*q.k per (token, head),
// fp32 [T, Hq].
#include "attention_common.cuh"

namespace {

constexpr int kPrefillWarps = 8;
constexpr int kBlockM = 16 * kPrefillWarps;
constexpr int kBlockN = 64;

template <int D>
__device__ __forceinline__ void prefill_impl(const bf16_t* __restrict__ q, int q_stride,
                                             const bf16_t* __restrict__ k_cache, const bf16_t* __restrict__ v_cache,
                                             const int* __restrict__ block_tables, int max_blocks_per_seq,
                                             const int* __restrict__ context_lens,
                                             const int* __restrict__ cu_seqlens_q, bf16_t* __restrict__ out,
                                             int o_stride, float* __restrict__ lse, int num_heads, int num_kv_heads,
                                             int block_size_log2, float scale_log2, int sliding_window) {
  constexpr int LD = D + 8;  // padded row: ldmatrix rows hit distinct banks
  constexpr int CHUNKS = D / 8;
  constexpr int THREADS = 32 * kPrefillWarps;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16_t* q_s = reinterpret_cast<bf16_t*>(smem_raw);
  bf16_t* k_s = q_s + kBlockM * LD;           // [2][kBlockN][LD]
  bf16_t* v_s = k_s + 2 * kBlockN * LD;       // [2][kBlockN][LD]

  const int seq = blockIdx.z;
  const int kvh = blockIdx.y;
  const int group = num_heads / num_kv_heads;
  const int q_begin = cu_seqlens_q[seq];
  const int q_len = cu_seqlens_q[seq + 1] - q_begin;
  const int rows = q_len * group;
  const int m_block = gridDim.x - 1 - blockIdx.x;  // the longest (causal) blocks start first
  const int row0 = m_block * kBlockM;
  if (row0 >= rows) return;
  const int ctx = context_lens[seq];
  const int pos0 = ctx - q_len;
  const int min_pos = pos0 + row0 / group;
  const int max_pos = pos0 + (min(rows, row0 + kBlockM) - 1) / group;
  const int key_lo = sliding_window > 0 ? max(0, min_pos - sliding_window + 1) : 0;
  const int tile_lo = key_lo / kBlockN;
  const int tile_hi = max_pos / kBlockN;

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int* table = block_tables + (long long)seq * max_blocks_per_seq;
  const int kv_stride = num_kv_heads * D;
  const int kv_head_off = kvh * D;

  // Q rows -> shared memory (rows past the sequence are zero).
#pragma unroll
  for (int i = 0; i < kBlockM * CHUNKS / THREADS; i++) {
    const int c = tid + i * THREADS;
    const int r = c / CHUNKS;
    const int ch = c % CHUNKS;
    const int R = row0 + r;
    const bool valid = R < rows;
    const bf16_t* src = q;
    if (valid) src = q + (long long)(q_begin + R / group) * q_stride + (kvh * group + R % group) * D + ch * 8;
    cp_async16(smem_addr(q_s + r * LD + ch * 8), src, valid);
  }

  auto load_kv = [&](int tile, int buf) {
    const int n0 = tile * kBlockN;
#pragma unroll
    for (int i = 0; i < kBlockN * CHUNKS / THREADS; i++) {
      const int c = tid + i * THREADS;
      const int r = c / CHUNKS;
      const int ch = c % CHUNKS;
      const int key = n0 + r;
      const bool valid = key < ctx;
      long long off = 0;
      if (valid) off = kv_row_offset(table, key, block_size_log2, kv_stride, kv_head_off) + ch * 8;
      cp_async16(smem_addr(k_s + (buf * kBlockN + r) * LD + ch * 8), k_cache + off, valid);
      cp_async16(smem_addr(v_s + (buf * kBlockN + r) * LD + ch * 8), v_cache + off, valid);
    }
  };

  load_kv(tile_hi, 0);
  cp_async_commit();

  // Positions of this thread's two rows (g and g + 8 of the warp's 16).
  const int g = lane >> 2;
  const int tig = lane & 3;
  int row_pos[2];
#pragma unroll
  for (int i = 0; i < 2; i++) {
    const int R = row0 + warp * 16 + g + 8 * i;
    row_pos[i] = R < rows ? pos0 + R / group : max_pos;
  }

  float o[D / 8][4];
#pragma unroll
  for (int d = 0; d < D / 8; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float m[2] = {ATTN_NEG_INF, ATTN_NEG_INF};
  float l[2] = {0.f, 0.f};
  u32 qf[D / 16][4];

  for (int tile = tile_hi; tile >= tile_lo; tile--) {
    const int buf = (tile_hi - tile) & 1;
    if (tile > tile_lo) {
      load_kv(tile - 1, buf ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (tile == tile_hi) load_q_fragments<D>(qf, q_s + warp * 16 * LD, LD, lane);

    float s[kBlockN / 8][4];
#pragma unroll
    for (int j = 0; j < kBlockN / 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
    qk_tile<D, kBlockN / 16>(s, qf, k_s + buf * kBlockN * LD, LD, lane);

    const int n0 = tile * kBlockN;
    const bool needs_mask =
        n0 + kBlockN - 1 > min_pos || (sliding_window > 0 && n0 <= max_pos - sliding_window);
    if (needs_mask) {
#pragma unroll
      for (int j = 0; j < kBlockN / 8; j++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int key = n0 + j * 8 + tig * 2 + (e & 1);
          const int pos = row_pos[e >> 1];
          if (key > pos || (sliding_window > 0 && key <= pos - sliding_window)) s[j][e] = ATTN_NEG_INF;
        }
      }
    }
    online_softmax<kBlockN / 8, D / 8>(s, o, m, l, scale_log2);
    pv_tile<D, kBlockN / 16>(o, s, v_s + buf * kBlockN * LD, LD, lane);
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 2; i++) {
    float sum = l[i];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int R = row0 + warp * 16 + g + 8 * i;
    if (R >= rows) continue;
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    const int token = q_begin + R / group;
    const int head = kvh * group + R % group;
    bf16_t* dst = out + (long long)token * o_stride + head * D + tig * 2;
#pragma unroll
    for (int d = 0; d < D / 8; d++)
      *reinterpret_cast<u32*>(dst + d * 8) = pack_bf16x2(o[d][2 * i] * inv, o[d][2 * i + 1] * inv);
    if (tig == 0)
      lse[(long long)token * num_heads + head] = sum > 0.f ? (m[i] + __log2f(sum)) * ATTN_LN2 : ATTN_NEG_INF;
  }
}

}  // namespace

#define PAGODA_FLASH_PREFILL(D)                                                                                      \
  extern "C" __global__ void __launch_bounds__(32 * kPrefillWarps, 1) flash_prefill_bf16_hd##D(                      \
      const bf16_t* q, int q_stride, const bf16_t* k_cache, const bf16_t* v_cache, const int* block_tables,          \
      int max_blocks_per_seq, const int* context_lens, const int* cu_seqlens_q, bf16_t* out, int o_stride,          \
      float* lse, int num_heads, int num_kv_heads, int block_size_log2, float scale_log2, int sliding_window) {      \
    prefill_impl<D>(q, q_stride, k_cache, v_cache, block_tables, max_blocks_per_seq, context_lens, cu_seqlens_q, out, \
                    o_stride, lse, num_heads, num_kv_heads, block_size_log2, scale_log2, sliding_window);            \
  }

PAGODA_FLASH_PREFILL(64)
PAGODA_FLASH_PREFILL(128)
