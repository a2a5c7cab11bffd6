// FlashDecoding-style paged attention for one query token per sequence, 16-bit in (bf16 or fp16 by PAGODA_DTYPE,
// see attention_common.cuh), fp32 accumulate.
//
// One CTA per (split, KV head [x head group], sequence): its 16 tensor-core rows are the query heads of one GQA
// group (up to 16; larger groups take several head groups), so each K/V row is read from the cache once for all of
// them. The CTA's key range (one split of the context, or of the sliding window) is dealt round-robin to its warps
// in tiles of kDecodeTileN keys; each warp streams its tiles through its own cp.async ring (16-byte copies) and keeps
// its own online softmax, and the warps are merged through shared memory at the end. With one split the CTA writes
// O (the stored type) and the LSE directly; with several it writes normalized fp32 partials and their LSE, which
// paged_decode_merge.cu combines. Token s of the step is sequence s's query, at position context_lens[s] - 1.
// A quantized cache (PAGODA_KV_QUANT) streams its bytes (and q8_0 scales) through the ring instead: at head sizes
// 64, 128 and 256 they go straight into float16 fragments (kv_decode_frags.cuh); otherwise the warp dequantizes a
// tile's K, then its V, into one 16-bit tile just before the mma that reads it.
#include "attention_common.cuh"
#include "decode_out.cuh"
#include "kv_decode_frags.cuh"

// Compile-time shape (the launcher passes the same values; these defaults are its defaults): warps per CTA, keys per warp tile, cp.async ring depth.
#ifndef PAGODA_DECODE_WARPS
#define PAGODA_DECODE_WARPS 4
#endif
#ifndef PAGODA_DECODE_TILE
#define PAGODA_DECODE_TILE 32
#endif
#ifndef PAGODA_DECODE_STAGES
#define PAGODA_DECODE_STAGES 2
#endif

namespace {

constexpr int kDecodeWarps = PAGODA_DECODE_WARPS;
constexpr int kDecodeTileN = PAGODA_DECODE_TILE;
constexpr int kDecodeStages = PAGODA_DECODE_STAGES;

template <int D>
__device__ __forceinline__ void decode_impl(const elem16_t* __restrict__ q, int q_stride,
                                            const kv_t* __restrict__ k_cache, const kv_t* __restrict__ v_cache,
                                            const int* __restrict__ block_tables, int max_blocks_per_seq,
                                            const int* __restrict__ context_lens, elem16_t* __restrict__ out,
                                            int o_stride, float* __restrict__ lse, float* __restrict__ partial_o,
                                            float* __restrict__ partial_lse, int num_heads, int num_kv_heads,
                                            int block_size_log2, float scale_log2, int sliding_window,
                                            float softcap, const unsigned short* __restrict__ k_scales,
                                            const unsigned short* __restrict__ v_scales, float k_scale,
                                            float v_scale, signed char* __restrict__ xq,
                                            q8_scale* __restrict__ xs) {
  constexpr int LD = D + 8;
  constexpr int LDO = D + 4;  // the warp merge's rows (padded: fewer bank conflicts as the fragments are stored)
  constexpr bool kRegs = kv_regs_path<D>();
  constexpr int CHUNKS = D / 8;
  constexpr int THREADS = 32 * kDecodeWarps;
  constexpr int TILE_ELEMS = kDecodeTileN * LD;
  // The ring's rows: the stored type's padded rows, or a quantized cache's D bytes (+16, keeping chunks aligned).
  constexpr int ROW_BYTES = kKvQuant ? D + 16 : LD * 2;
  constexpr int KV_CHUNKS = D * kKvBytes / 16;
  constexpr int TILE_BYTES = kDecodeTileN * ROW_BYTES;
  constexpr int SCALE_BYTES = kv_scale_bytes<D>();  // one key's q8_0 scales
  constexpr int SCALE_TILE = kDecodeTileN * SCALE_BYTES;
  // A warp's region: [16-bit tile, quantized caches only][stages][K, V] tiles [stages][K, V] q8_0 scale tiles.
  constexpr int DEQ_BYTES = kKvQuant && !kRegs ? TILE_ELEMS * 2 : 0;
  constexpr int WARP_BYTES = DEQ_BYTES + kDecodeStages * 2 * (TILE_BYTES + SCALE_TILE);
  static_assert(WARP_BYTES >= (16 * LDO + 32) * 4, "the warp merge must fit in the K/V ring");
  extern __shared__ __align__(16) unsigned char smem_raw[];
  elem16_t* q_s = reinterpret_cast<elem16_t*>(smem_raw);                    // [16][LD]
  unsigned char* kv_s = reinterpret_cast<unsigned char*>(q_s + 16 * LD);   // [warps][WARP_BYTES]
  float* merge_s = reinterpret_cast<float*>(kv_s);                      // reused after the main loop

  // A quantized cache's factors (kv_tile_factor): K's into the softmax scale, V's into O.
  if constexpr (kKvQuant) scale_log2 *= kv_tile_factor(k_scale);
  const float o_factor = kKvQuant ? kv_tile_factor(v_scale) : 1.f;
  const int num_splits = gridDim.x;
  const int split = blockIdx.x;
  const int seq = blockIdx.z;
  const int group = num_heads / num_kv_heads;
  const int head_groups = (group + 15) / 16;
  const int kvh = blockIdx.y / head_groups;
  const int g_begin = (blockIdx.y % head_groups) * 16;
  const int g_count = min(16, group - g_begin);
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;

  const int ctx = context_lens[seq];
  const int key_lo = sliding_window > 0 ? max(0, ctx - sliding_window) : 0;
  const int span = ctx - key_lo;
  const int per_split = ((span + num_splits - 1) / num_splits + kDecodeTileN - 1) / kDecodeTileN * kDecodeTileN;
  const int k_begin = key_lo + split * per_split;
  const int k_end = min(ctx, k_begin + per_split);
  const int n_tiles = k_end > k_begin ? (k_end - k_begin + kDecodeTileN - 1) / kDecodeTileN : 0;

  // Query rows of this head group -> shared memory (other rows zero).
  for (int c = tid; c < 16 * CHUNKS; c += THREADS) {
    const int r = c / CHUNKS;
    const int ch = c % CHUNKS;
    const bool valid = r < g_count;
    const elem16_t* src = q;
    if (valid) src = q + (long long)seq * q_stride + (kvh * group + g_begin + r) * D + ch * 8;
    cp_async16(smem_addr(q_s + r * LD + ch * 8), src, valid);
  }
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  if constexpr (kQTileToF16) {
    q_tile_to_f16(q_s, 16 * LD, tid, THREADS);
    __syncthreads();
  }
  u32 qf[D / 16][4];
  if constexpr (kRegs) {
    q_frags_permuted<D>(qf, q_s, LD, lane);
  } else {
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) load_a_fragment(qf[kk], q_s, LD, kk, lane);
  }

  const int* table = block_tables + (long long)seq * max_blocks_per_seq;
  const int kv_stride = num_kv_heads * D;
  const int kv_head_off = kvh * D;
  elem16_t* deq = reinterpret_cast<elem16_t*>(kv_s + warp * WARP_BYTES);
  unsigned char* ring = kv_s + warp * WARP_BYTES + DEQ_BYTES;
  unsigned char* scale_ring = ring + kDecodeStages * 2 * TILE_BYTES;
  const int scale_stride = num_kv_heads * SCALE_BYTES / 2;  // a slot's q8_0 scales (halves)

  // Warp `warp` takes tiles warp, warp + kDecodeWarps, ...; its i-th tile goes to ring slot i % kDecodeStages.
  const int my_tiles = n_tiles > warp ? (n_tiles - warp + kDecodeWarps - 1) / kDecodeWarps : 0;
  // Each lane copies ITERS 16-byte chunks of a tile (rows (lane + 32 j) / KV_CHUNKS); their cache blocks are looked up
  // one tile ahead of the copy (lookup), so the block-table load does not stall the warp.
  constexpr int ITERS = kDecodeTileN * KV_CHUNKS / 32;
  static_assert(kDecodeTileN * KV_CHUNKS % 32 == 0, "a tile's 16-byte chunks must divide among a warp's lanes");
  const int block_mask = (1 << block_size_log2) - 1;
  auto lookup = [&](int i, int (&blocks)[ITERS]) {
    const int n0 = k_begin + (warp + i * kDecodeWarps) * kDecodeTileN;
#pragma unroll
    for (int j = 0; j < ITERS; j++) {
      const int key = n0 + (lane + j * 32) / KV_CHUNKS;
      blocks[j] = key < k_end ? table[key >> block_size_log2] : -1;
    }
  };
  auto load_tile = [&](int i, const int (&blocks)[ITERS]) {
    const int n0 = k_begin + (warp + i * kDecodeWarps) * kDecodeTileN;
    unsigned char* k_dst = ring + (i % kDecodeStages) * 2 * TILE_BYTES;
    unsigned char* v_dst = k_dst + TILE_BYTES;
#pragma unroll
    for (int j = 0; j < ITERS; j++) {
      const int c = lane + j * 32;
      const int r = c / KV_CHUNKS;
      const int ch = c % KV_CHUNKS;
      const int key = n0 + r;
      const bool valid = blocks[j] >= 0;
      const long long slot = ((long long)blocks[j] << block_size_log2) | (key & block_mask);
      const long long off = valid ? slot * kv_stride + kv_head_off + ch * (16 / kKvBytes) : 0;
      cp_async16(smem_addr(k_dst + r * ROW_BYTES + ch * 16), k_cache + off, valid);
      cp_async16(smem_addr(v_dst + r * ROW_BYTES + ch * 16), v_cache + off, valid);
      // The lane with a row's first chunk copies its q8_0 scales.
      if constexpr (SCALE_BYTES > 0) {
        if (ch == 0) {
          unsigned char* ks_dst = scale_ring + (i % kDecodeStages) * 2 * SCALE_TILE + r * SCALE_BYTES;
          const long long s_off = valid ? slot * scale_stride + kvh * (SCALE_BYTES / 2) : 0;
          cp_async_ca<SCALE_BYTES>(smem_addr(ks_dst), k_scales + s_off, valid);
          cp_async_ca<SCALE_BYTES>(smem_addr(ks_dst + SCALE_TILE), v_scales + s_off, valid);
        }
      }
    }
  };
  int blocks[ITERS];
#pragma unroll
  for (int i = 0; i < kDecodeStages - 1; i++) {
    if (i < my_tiles) {
      lookup(i, blocks);
      load_tile(i, blocks);
    }
    cp_async_commit();
  }
  if (kDecodeStages - 1 < my_tiles) lookup(kDecodeStages - 1, blocks);

  float o[1][D / 8][4];
#pragma unroll
  for (int d = 0; d < D / 8; d++) o[0][d][0] = o[0][d][1] = o[0][d][2] = o[0][d][3] = 0.f;
  float m[2] = {ATTN_NEG_INF, ATTN_NEG_INF};
  float l[2] = {0.f, 0.f};
  const int tig = lane & 3;

  for (int i = 0; i < my_tiles; i++) {
    if (i + kDecodeStages - 1 < my_tiles) {
      load_tile(i + kDecodeStages - 1, blocks);
      if (i + kDecodeStages < my_tiles) lookup(i + kDecodeStages, blocks);
    }
    cp_async_commit();
    cp_async_wait<kDecodeStages - 1>();
    __syncwarp();
    const unsigned char* kv_tile = ring + (i % kDecodeStages) * 2 * TILE_BYTES;
    const unsigned short* tile_scales =
        reinterpret_cast<const unsigned short*>(scale_ring + (i % kDecodeStages) * 2 * SCALE_TILE);
    if constexpr (kKvQuant && !kRegs) {
      dequant_tile<D, kDecodeTileN, ROW_BYTES, LD, 32>(deq, kv_tile, tile_scales, lane);
      __syncwarp();
    }
    const elem16_t* k_src = kKvQuant ? deq : reinterpret_cast<const elem16_t*>(kv_tile);
    float s[1][kDecodeTileN / 8][4];
#pragma unroll
    for (int j = 0; j < kDecodeTileN / 8; j++) s[0][j][0] = s[0][j][1] = s[0][j][2] = s[0][j][3] = 0.f;
    if constexpr (kRegs) {
      kv_qk<D, kDecodeTileN / 8>(s[0], qf, kv_tile, tile_scales, ROW_BYTES, lane);
    } else {
      qk_tile<D, kDecodeTileN / 16, 1>(
          s,
          [&](int, int kk, u32(&a)[4]) {
#pragma unroll
            for (int e = 0; e < 4; e++) a[e] = qf[kk][e];
          },
          k_src, LD, lane);
    }
    softcap_scores<kDecodeTileN / 8>(s[0], softcap, scale_log2);
    const int n0 = k_begin + (warp + i * kDecodeWarps) * kDecodeTileN;
    if (n0 + kDecodeTileN > k_end) {
#pragma unroll
      for (int j = 0; j < kDecodeTileN / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++)
          if (n0 + j * 8 + tig * 2 + (e & 1) >= k_end) s[0][j][e] = ATTN_NEG_INF;
    }
    online_softmax<kDecodeTileN / 8, D / 8>(s[0], o[0], m, l, scale_log2);
    if constexpr (kRegs) {
      kv_pv<D, kDecodeTileN / 16>(o[0], s[0], kv_tile + TILE_BYTES, tile_scales + SCALE_TILE / 2, ROW_BYTES, lane);
    } else {
      if constexpr (kKvQuant) {
        __syncwarp();  // every lane's ldmatrix of K is done before V overwrites the tile
        dequant_tile<D, kDecodeTileN, ROW_BYTES, LD, 32>(deq, kv_tile + TILE_BYTES, tile_scales + SCALE_TILE / 2,
                                                         lane);
        __syncwarp();
      }
      pv_tile<D, kDecodeTileN / 16, 1>(o, s, kKvQuant ? deq : reinterpret_cast<const elem16_t*>(kv_tile + TILE_BYTES),
                                       LD, lane);
    }
    __syncwarp();
  }
  cp_async_wait<0>();

  // Merge the warps: each writes its rows' (m, l) and unnormalized O to shared memory.
#pragma unroll
  for (int i = 0; i < 2; i++) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
  }
  __syncthreads();
  float* w_o = merge_s + warp * 16 * LDO;                // [warps][16][LDO]
  float* w_ml = merge_s + kDecodeWarps * 16 * LDO;       // [warps][16][2]
  const int g = lane >> 2;
#pragma unroll
  for (int i = 0; i < 2; i++) {
    const int r = g + 8 * i;
#pragma unroll
    for (int d = 0; d < D / 8; d++) {
      w_o[r * LDO + decode_o_dim<D>(d, tig * 2)] = o[0][d][2 * i];
      w_o[r * LDO + decode_o_dim<D>(d, tig * 2 + 1)] = o[0][d][2 * i + 1];
    }
    if (tig == 0) {
      w_ml[(warp * 16 + r) * 2] = m[i];
      w_ml[(warp * 16 + r) * 2 + 1] = l[i];
    }
  }
  __syncthreads();

  for (int c = tid; c < g_count * D; c += THREADS) {
    const int r = c / D;
    const int d = c % D;
    float m_max = ATTN_NEG_INF;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; w++) m_max = fmaxf(m_max, w_ml[(w * 16 + r) * 2]);
    float sum = 0.f;
    float acc = 0.f;
    if (m_max != ATTN_NEG_INF) {
#pragma unroll
      for (int w = 0; w < kDecodeWarps; w++) {
        const float scale = fast_exp2(w_ml[(w * 16 + r) * 2] - m_max);
        sum += w_ml[(w * 16 + r) * 2 + 1] * scale;
        acc += merge_s[(w * 16 + r) * LDO + d] * scale;
      }
    }
    const float inv = sum > 0.f ? o_factor / sum : 0.f;
    const float lse_r = sum > 0.f ? (m_max + __log2f(sum)) * ATTN_LN2 : ATTN_NEG_INF;
    const int head = kvh * group + g_begin + r;
    if (num_splits == 1) {
      store_o(out, (long long)seq * o_stride + head * D + d, acc * inv, xq, xs);
      if (d == 0) lse[(long long)seq * num_heads + head] = lse_r;
    } else {
      const long long idx = ((long long)seq * num_heads + head) * num_splits + split;
      partial_o[idx * D + d] = acc * inv;
      if (d == 0) partial_lse[idx] = lse_r;
    }
  }
}

}  // namespace

#define PAGODA_PAGED_DECODE(D)                                                                                      \
  extern "C" __global__ void __launch_bounds__(32 * kDecodeWarps, 2) paged_decode_hd##D(                       \
      const elem16_t* q, int q_stride, const kv_t* k_cache, const kv_t* v_cache, const int* block_tables,         \
      int max_blocks_per_seq, const int* context_lens, elem16_t* out, int o_stride, float* lse, float* partial_o,     \
      float* partial_lse, int num_heads, int num_kv_heads, int block_size_log2, float scale_log2,                  \
      int sliding_window, float softcap, const unsigned short* k_scales, const unsigned short* v_scales,            \
      float k_scale, float v_scale, signed char* xq, q8_scale* xs) {                                                \
    PDL_ENTER();                                                                                                    \
    decode_impl<D>(q, q_stride, k_cache, v_cache, block_tables, max_blocks_per_seq, context_lens, out, o_stride,    \
                   lse, partial_o, partial_lse, num_heads, num_kv_heads, block_size_log2, scale_log2,              \
                   sliding_window, softcap, k_scales, v_scales, k_scale, v_scale, xq, xs);                         \
  }

// The launcher builds one head size per module (PAGODA_HEAD_DIM); without it every size is built (a q8_0 cache's
// tiles need whole 64-value heads: its heads of 80 and 96 go to the simple kernel).
#if !defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 64
PAGODA_PAGED_DECODE(64)
#endif
#if (!defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 80) && PAGODA_KV_QUANT != KV_Q8_0
PAGODA_PAGED_DECODE(80)
#endif
#if (!defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 96) && PAGODA_KV_QUANT != KV_Q8_0
PAGODA_PAGED_DECODE(96)
#endif
#if !defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 128
PAGODA_PAGED_DECODE(128)
#endif
#if !defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 256
PAGODA_PAGED_DECODE(256)
#endif
