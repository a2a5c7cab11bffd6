// FlashAttention-2-style prefill over the paged KV cache, 16-bit in (bf16 or fp16 by PAGODA_DTYPE, see
// attention_common.cuh), fp32 accumulate (mma.sync m16n8k16).
//
// One CTA per (KV head, sequence, m-block), m-blocks on the slowest grid axis and in reverse, so the longest (causal)
// blocks of every head and sequence start first and the short ones fill the tail. An m-block's rows are (query token,
// head of the GQA group) pairs, row R = token * G + g, so each K/V tile is loaded once for all G query heads sharing it. All keys, this
// chunk's and the earlier context alike, are read from the paged cache through the block table: chunked prefill and
// prefix-cache hits are the same case. Query token i of a sequence with q_len queries and ctx keys sits at position
// ctx - q_len + i and sees keys j <= pos (and j > pos - window when a sliding window is set).
// Outputs O (the stored type, [T, Hq*D] with row stride o_stride) and the natural-log LSE of scale*q.k per (token, head),
// fp32 [T, Hq].
//
// PAGODA_PREFILL_SELF=1 builds the variant with no cache (embedding models): k_cache / v_cache are this step's K and V
// rows [T, Hk*D], sequence s's key j at row cu_seqlens_q[s] + j, every sequence whole (ctx = q_len, no block table).
// PAGODA_PREFILL_CAUSAL=0 drops the causal mask: every query sees every key of its sequence (encoders).
// A quantized cache (PAGODA_KV_QUANT, paged only) double-buffers its bytes (and q8_0 scales) instead; once a tile
// has landed the CTA dequantizes its K and V into one pair of 16-bit tiles, which the mma then reads.
#include "attention_common.cuh"

// Tile shape, chosen at compile time (the launcher passes the same values; these defaults are its defaults):
// PAGODA_PREFILL_WARPS warps, each owning PAGODA_PREFILL_MT 16-row tiles, over K/V tiles of PAGODA_PREFILL_BN keys.
// With one row tile a warp keeps its Q fragments in registers (head sizes up to 128); with two it re-reads them from
// shared memory but loads each K/V fragment once for both tiles (half the shared-memory traffic per mma).
#ifndef PAGODA_PREFILL_WARPS
#define PAGODA_PREFILL_WARPS 8
#endif
#ifndef PAGODA_PREFILL_MT
#define PAGODA_PREFILL_MT 2
#endif
#ifndef PAGODA_PREFILL_BN
#define PAGODA_PREFILL_BN 64
#endif
#ifndef PAGODA_PREFILL_SELF
#define PAGODA_PREFILL_SELF 0
#endif
#ifndef PAGODA_PREFILL_CAUSAL
#define PAGODA_PREFILL_CAUSAL 1
#endif

namespace {

constexpr int kPrefillWarps = PAGODA_PREFILL_WARPS;
constexpr int kPrefillMT = PAGODA_PREFILL_MT;
constexpr int kBlockM = 16 * kPrefillMT * kPrefillWarps;
constexpr int kBlockN = PAGODA_PREFILL_BN;
constexpr int kTableSlots = kBlockN / 16;  // cache blocks a K/V tile can touch (block_size >= 16)
constexpr int kPrefillMinBlocks = kPrefillWarps * kPrefillMT <= 4 ? 2 : 1;
constexpr bool kSelf = PAGODA_PREFILL_SELF != 0;
constexpr bool kCausal = PAGODA_PREFILL_CAUSAL != 0;
static_assert(!(kSelf && kKvQuant), "the no-cache build reads this step's 16-bit K and V");

template <int D>
__device__ __forceinline__ void prefill_impl(const elem16_t* __restrict__ q, int q_stride,
                                             const kv_t* __restrict__ k_cache, const kv_t* __restrict__ v_cache,
                                             const int* __restrict__ block_tables, int max_blocks_per_seq,
                                             const int* __restrict__ context_lens,
                                             const int* __restrict__ cu_seqlens_q, elem16_t* __restrict__ out,
                                             int o_stride, float* __restrict__ lse, int num_heads, int num_kv_heads,
                                             int block_size_log2, float scale_log2, int sliding_window,
                                             float softcap, const unsigned short* __restrict__ k_scales,
                                             const unsigned short* __restrict__ v_scales, float k_scale,
                                             float v_scale) {
  constexpr int LD = D + 8;  // padded row: ldmatrix rows hit distinct banks
  constexpr int CHUNKS = D / 8;
  // The K/V buffers' rows: the stored type's padded rows, or a quantized cache's D bytes (+16, chunks aligned).
  constexpr int ROW_BYTES = kKvQuant ? D + 16 : LD * 2;
  constexpr int KV_CHUNKS = D * kKvBytes / 16;
  constexpr int SCALE_BYTES = kv_scale_bytes<D>();  // one key's q8_0 scales
  constexpr int THREADS = 32 * kPrefillWarps;
  constexpr int MT = kPrefillMT;
  // Q fragments in registers cost D / 4 registers a thread: at head size 256, beside O's D / 2, they would spill.
  constexpr bool Q_IN_REGS = MT == 1 && D <= 128;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  elem16_t* q_s = reinterpret_cast<elem16_t*>(smem_raw);
  unsigned char* k_s = reinterpret_cast<unsigned char*>(q_s + kBlockM * LD);  // [2][kBlockN][ROW_BYTES]
  unsigned char* v_s = k_s + 2 * kBlockN * ROW_BYTES;                          // [2][kBlockN][ROW_BYTES]
  // Quantized caches only: the dequantized K and V tiles ([kBlockN][LD] each), then [2][K, V][kBlockN] q8_0 scales.
  elem16_t* k_deq = reinterpret_cast<elem16_t*>(v_s + 2 * kBlockN * ROW_BYTES);
  elem16_t* v_deq = k_deq + kBlockN * LD;
  unsigned char* scale_s = reinterpret_cast<unsigned char*>(v_deq + kBlockN * LD);
  constexpr int QUANT_BYTES = kKvQuant ? 2 * kBlockN * LD * 2 + 4 * kBlockN * SCALE_BYTES : 0;
  int* blk_s = reinterpret_cast<int*>(v_s + 2 * kBlockN * ROW_BYTES + QUANT_BYTES);  // [2][kTableSlots]

  // A quantized cache's factors (kv_tile_factor): K's into the softmax scale, V's into O.
  if constexpr (kKvQuant) scale_log2 *= kv_tile_factor(k_scale);
  const float o_factor = kKvQuant ? kv_tile_factor(v_scale) : 1.f;
  const int kvh = blockIdx.x;
  const int seq = blockIdx.y;
  const int group = num_heads / num_kv_heads;
  const int q_begin = cu_seqlens_q[seq];
  const int q_len = cu_seqlens_q[seq + 1] - q_begin;
  const int rows = q_len * group;
  const int m_block = gridDim.z - 1 - blockIdx.z;
  const int row0 = m_block * kBlockM;
  if (row0 >= rows) return;
  const int ctx = kSelf ? q_len : context_lens[seq];
  const int pos0 = ctx - q_len;
  const int min_pos = pos0 + row0 / group;
  const int max_pos = pos0 + (min(rows, row0 + kBlockM) - 1) / group;
  const int key_lo = kCausal && sliding_window > 0 ? max(0, min_pos - sliding_window + 1) : 0;
  const int tile_lo = key_lo / kBlockN;
  const int tile_hi = (kCausal ? max_pos : ctx - 1) / kBlockN;

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int* table = block_tables + (long long)seq * max_blocks_per_seq;
  const int kv_stride = num_kv_heads * D;
  const int kv_head_off = kvh * D;
  const int scale_stride = num_kv_heads * SCALE_BYTES / 2;  // a slot's q8_0 scales (halves)

  // Q rows -> shared memory (rows past the sequence are zero). A tile's 16-byte chunks need not divide among the
  // threads (head size 80: 10 a row); the last round's surplus threads stop (a test that compiles away otherwise).
#pragma unroll
  for (int i = 0; i < ceil_div(kBlockM * CHUNKS, THREADS); i++) {
    const int c = tid + i * THREADS;
    if ((kBlockM * CHUNKS) % THREADS != 0 && c >= kBlockM * CHUNKS) break;
    const int r = c / CHUNKS;
    const int ch = c % CHUNKS;
    const int R = row0 + r;
    const bool valid = R < rows;
    const elem16_t* src = q;
    if (valid) src = q + (long long)(q_begin + R / group) * q_stride + (kvh * group + R % group) * D + ch * 8;
    cp_async16(smem_addr(q_s + r * LD + ch * 8), src, valid);
  }

  // A K/V tile's cache blocks (at most kBlockN / 16 of them, block_size >= 16) are copied from the block table to
  // shared memory one tile ahead of the K/V copies that need them, so no thread waits on a table load.
  const int block_mask = (1 << block_size_log2) - 1;
  auto fetch_blocks = [&](int tile, int slot) {
    if (!kSelf && tid < kTableSlots) {
      const int first = (tile * kBlockN) >> block_size_log2;
      const int idx = first + tid;
      const bool valid = idx <= ((tile * kBlockN + kBlockN - 1) >> block_size_log2) && (idx << block_size_log2) < ctx;
      cp_async4(smem_addr(blk_s + slot * kTableSlots + tid), table + (valid ? idx : 0), valid);
    }
  };
  auto load_kv = [&](int tile, int buf) {
    const int* blocks = blk_s + buf * kTableSlots;
    const int first = (tile * kBlockN) >> block_size_log2;
#pragma unroll
    for (int i = 0; i < ceil_div(kBlockN * KV_CHUNKS, THREADS); i++) {
      const int c = tid + i * THREADS;
      if ((kBlockN * KV_CHUNKS) % THREADS != 0 && c >= kBlockN * KV_CHUNKS) break;
      const int r = c / KV_CHUNKS;
      const int ch = c % KV_CHUNKS;
      const int key = tile * kBlockN + r;
      const bool valid = key < ctx;
      const long long slot =
          kSelf ? (long long)(q_begin + key)
                : ((long long)blocks[(key >> block_size_log2) - first] << block_size_log2) | (key & block_mask);
      const long long off = valid ? slot * kv_stride + kv_head_off + ch * (16 / kKvBytes) : 0;
      cp_async16(smem_addr(k_s + (buf * kBlockN + r) * ROW_BYTES + ch * 16), k_cache + off, valid);
      cp_async16(smem_addr(v_s + (buf * kBlockN + r) * ROW_BYTES + ch * 16), v_cache + off, valid);
      // The thread with a row's first chunk copies its q8_0 scales.
      if constexpr (SCALE_BYTES > 0) {
        if (ch == 0) {
          unsigned char* ks_dst = scale_s + (buf * 2 * kBlockN + r) * SCALE_BYTES;
          const long long s_off = valid ? slot * scale_stride + kvh * (SCALE_BYTES / 2) : 0;
          cp_async_ca<SCALE_BYTES>(smem_addr(ks_dst), k_scales + s_off, valid);
          cp_async_ca<SCALE_BYTES>(smem_addr(ks_dst + kBlockN * SCALE_BYTES), v_scales + s_off, valid);
        }
      }
    }
  };

  fetch_blocks(tile_hi, 0);
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  if constexpr (kQTileToF16) q_tile_to_f16(q_s, kBlockM * LD, tid, THREADS);  // the tile loop syncs before reading
  load_kv(tile_hi, 0);
  if (tile_hi > tile_lo) fetch_blocks(tile_hi - 1, 1);
  cp_async_commit();

  // Positions of this thread's rows: g and g + 8 of each of the warp's row tiles.
  const int g = lane >> 2;
  const int tig = lane & 3;
  const int warp_row0 = row0 + warp * 16 * MT;
  const elem16_t* q_warp = q_s + warp * 16 * MT * LD;
  int row_pos[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; mt++)
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int R = warp_row0 + mt * 16 + g + 8 * i;
      row_pos[mt][i] = R < rows ? pos0 + R / group : max_pos;
    }

  float o[MT][D / 8][4];
  float m[MT][2];
  float l[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; mt++) {
#pragma unroll
    for (int d = 0; d < D / 8; d++) o[mt][d][0] = o[mt][d][1] = o[mt][d][2] = o[mt][d][3] = 0.f;
    m[mt][0] = m[mt][1] = ATTN_NEG_INF;
    l[mt][0] = l[mt][1] = 0.f;
  }
  u32 qf[Q_IN_REGS ? D / 16 : 1][4];

  for (int tile = tile_hi; tile >= tile_lo; tile--) {
    // Tile `tile` (buffer `buf`) and the blocks of tile - 1 have landed; every thread is past the previous tile, so
    // the other buffer and table slot are free for tile - 1 and tile - 2.
    const int buf = (tile_hi - tile) & 1;
    cp_async_wait<0>();
    __syncthreads();
    if (tile > tile_lo) {
      load_kv(tile - 1, buf ^ 1);
      if (tile - 1 > tile_lo) fetch_blocks(tile - 2, buf);
      cp_async_commit();
    }
    const elem16_t* k_tile = reinterpret_cast<const elem16_t*>(k_s + buf * kBlockN * ROW_BYTES);
    const elem16_t* v_tile = reinterpret_cast<const elem16_t*>(v_s + buf * kBlockN * ROW_BYTES);
    if constexpr (kKvQuant) {
      const unsigned short* tile_scales = reinterpret_cast<const unsigned short*>(scale_s + buf * 2 * kBlockN * SCALE_BYTES);
      dequant_tile<D, kBlockN, ROW_BYTES, LD, THREADS>(k_deq, k_s + buf * kBlockN * ROW_BYTES, tile_scales, tid);
      dequant_tile<D, kBlockN, ROW_BYTES, LD, THREADS>(v_deq, v_s + buf * kBlockN * ROW_BYTES,
                                                       tile_scales + kBlockN * SCALE_BYTES / 2, tid);
      __syncthreads();
      k_tile = k_deq;
      v_tile = v_deq;
    }
    if (Q_IN_REGS && tile == tile_hi) {
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) load_a_fragment(qf[Q_IN_REGS ? kk : 0], q_warp, LD, kk, lane);
    }

    float s[MT][kBlockN / 8][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
      for (int j = 0; j < kBlockN / 8; j++) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
    qk_tile<D, kBlockN / 16, MT>(
        s,
        [&](int mt, int kk, u32(&a)[4]) {
          if (Q_IN_REGS) {
#pragma unroll
            for (int e = 0; e < 4; e++) a[e] = qf[Q_IN_REGS ? kk : 0][e];
          } else {
            load_a_fragment(a, q_warp + mt * 16 * LD, LD, kk, lane);
          }
        },
        k_tile, LD, lane);
#pragma unroll
    for (int mt = 0; mt < MT; mt++) softcap_scores<kBlockN / 8>(s[mt], softcap, scale_log2);

    const int n0 = tile * kBlockN;
    // Causal: keys past a row's position (and before its window); otherwise only the keys past the sequence.
    const bool needs_mask = kCausal ? n0 + kBlockN - 1 > min_pos || (sliding_window > 0 && n0 <= max_pos - sliding_window)
                                    : n0 + kBlockN > ctx;
    if (needs_mask) {
#pragma unroll
      for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int j = 0; j < kBlockN / 8; j++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            const int key = n0 + j * 8 + tig * 2 + (e & 1);
            const int pos = row_pos[mt][e >> 1];
            const bool masked =
                kCausal ? key > pos || (sliding_window > 0 && key <= pos - sliding_window) : key >= ctx;
            if (masked) s[mt][j][e] = ATTN_NEG_INF;
          }
    }
#pragma unroll
    for (int mt = 0; mt < MT; mt++) online_softmax<kBlockN / 8, D / 8>(s[mt], o[mt], m[mt], l[mt], scale_log2);
    pv_tile<D, kBlockN / 16, MT>(o, s, v_tile, LD, lane);
  }

#pragma unroll
  for (int mt = 0; mt < MT; mt++)
#pragma unroll
    for (int i = 0; i < 2; i++) {
      float sum = l[mt][i];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const int R = warp_row0 + mt * 16 + g + 8 * i;
      if (R >= rows) continue;
      const float inv = sum > 0.f ? o_factor / sum : 0.f;
      const int token = q_begin + R / group;
      const int head = kvh * group + R % group;
      elem16_t* dst = out + (long long)token * o_stride + head * D + tig * 2;
#pragma unroll
      for (int d = 0; d < D / 8; d++)
        *reinterpret_cast<u32*>(dst + d * 8) = pack_x2(o[mt][d][2 * i] * inv, o[mt][d][2 * i + 1] * inv);
      if (tig == 0)
        lse[(long long)token * num_heads + head] = sum > 0.f ? (m[mt][i] + __log2f(sum)) * ATTN_LN2 : ATTN_NEG_INF;
    }
}

}  // namespace

#define PAGODA_FLASH_PREFILL(D)                                                                                      \
  extern "C" __global__ void __launch_bounds__(32 * kPrefillWarps, kPrefillMinBlocks) flash_prefill_hd##D(      \
      const elem16_t* q, int q_stride, const kv_t* k_cache, const kv_t* v_cache, const int* block_tables,          \
      int max_blocks_per_seq, const int* context_lens, const int* cu_seqlens_q, elem16_t* out, int o_stride,          \
      float* lse, int num_heads, int num_kv_heads, int block_size_log2, float scale_log2, int sliding_window,       \
      float softcap, const unsigned short* k_scales, const unsigned short* v_scales, float k_scale,                 \
      float v_scale) {                                                                                               \
    PDL_ENTER();                                                                                                     \
    prefill_impl<D>(q, q_stride, k_cache, v_cache, block_tables, max_blocks_per_seq, context_lens, cu_seqlens_q, out, \
                    o_stride, lse, num_heads, num_kv_heads, block_size_log2, scale_log2, sliding_window, softcap,    \
                    k_scales, v_scales, k_scale, v_scale);                                                           \
  }

// The launcher builds one head size per module (PAGODA_HEAD_DIM); without it every size is built (a q8_0 cache's
// tiles need whole 64-value heads: its heads of 80 and 96 go to the simple kernel).
#if !defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 64
PAGODA_FLASH_PREFILL(64)
#endif
#if (!defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 80) && PAGODA_KV_QUANT != KV_Q8_0
PAGODA_FLASH_PREFILL(80)
#endif
#if (!defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 96) && PAGODA_KV_QUANT != KV_Q8_0
PAGODA_FLASH_PREFILL(96)
#endif
#if !defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 128
PAGODA_FLASH_PREFILL(128)
#endif
#if !defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 256
PAGODA_FLASH_PREFILL(256)
#endif
