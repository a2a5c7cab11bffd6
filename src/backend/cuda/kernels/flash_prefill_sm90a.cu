// Prefill attention for Hopper (sm_90a only: wgmma, setmaxnreg), computing what flash_prefill.cu computes for its
// common case: a 16-bit paged cache (bf16 or fp16 by PAGODA_DTYPE), causal, varlen, paged context (chunked prefill,
// prefix hits), GQA rows packed R = token * G + g, sliding window, LSE out. Soft-capping, quantized caches, the no-cache
// and non-causal builds and other head sizes stay on flash_prefill.cu (flash-attention.ts picks).
//
// One CTA per (KV head, sequence, m-block of 128 rows), m-blocks in reverse as in flash_prefill.cu, of three
// warpgroups: a producer and two consumers of 64 rows each. The producer (setmaxnreg down to few registers) copies K/V
// tiles of kBlockN keys through the block table into a kStages-deep shared-memory ring; each stage has a `full`
// mbarrier the copies arrive on and an `empty` one the consumers arrive on when done with it. The copies are cp.async,
// not TMA: a tensor map would have to be encoded per layer cache on the host and passed as a 128-byte kernel parameter
// (the launcher packs pointers and scalars only), a K/V tile spans up to kBlockN / 16 cache blocks (one box each), and
// the keys past the context inside a block would come back as whatever the cache holds rather than zeros, so V's rows
// there could be NaN under a zero probability. cp.async zero-fills them and writes the 128-byte swizzle directly.
// Each consumer (setmaxnreg up) loads its own Q rows, then per tile: S = Q K^T by wgmma from shared memory (fp32 in
// registers), the mask where the tile needs one, the online softmax in base 2, and O += P V with P packed to 16 bits
// straight from S's registers as wgmma's A operand (no shared-memory round trip), V read MN-major (transposed) from
// the same swizzled layout as K. Tiles past every row's position are never loaded (causal tile skipping); the two
// consumers overlap each other's softmax with their matrix work on the SM's schedulers.
#include "wgmma.cuh"

namespace {

constexpr int kConsumers = 2;  // consumer warpgroups, 64 query rows each
constexpr int kBlockM = 64 * kConsumers;
constexpr int kThreads = 128 * (1 + kConsumers);
// 128 x 40 + 256 x 232 = 64,512 of the SM's 65,536 registers.
constexpr int kProducerRegs = 40;
constexpr int kConsumerRegs = 232;
static_assert(!kKvQuant, "the wgmma kernel reads a 16-bit cache");

// Keys per K/V tile and ring depth for head size D (the launcher passes flash-sizing.ts's sm90aPrefillConfig as
// PAGODA_WGMMA_BN / _STAGES; these defaults are the same), and the byte offsets of the tiles from the 1024-aligned
// base: the consumers' Q tiles, then the K and V rings.
template <int D>
struct Layout {
#ifdef PAGODA_WGMMA_BN
  static constexpr int n = PAGODA_WGMMA_BN;
#else
  static constexpr int n = D == 256 ? 64 : 128;  // head size 256: O takes 128 registers, S gets 32
#endif
#ifdef PAGODA_WGMMA_STAGES
  static constexpr int stages = PAGODA_WGMMA_STAGES;
#else
  static constexpr int stages = D == 64 ? 4 : 2;
#endif
  static_assert(n == 64 || n == 128, "S = Q K^T is one wgmma wide");
  static constexpr int q_bytes = 64 * D * 2;
  static constexpr int kv_bytes = n * D * 2;
  static constexpr int k = kConsumers * q_bytes;
  static constexpr int v = k + stages * kv_bytes;
};

// Producer: K and V of tile `tile` (keys tile * kBlockN ...) into stage buffers for every tile of the CTA, from the
// highest down, each once the consumers have released its stage. Keys at or past the context are zero-filled.
template <int D>
__device__ __forceinline__ void produce(u32 base, u32 full_bar, u32 empty_bar, const elem16_t* __restrict__ k_cache,
                                        const elem16_t* __restrict__ v_cache, const int* __restrict__ table,
                                        int block_size_log2, int ctx, int kv_stride, int kv_head_off, int tile_lo,
                                        int tile_hi, int t) {
  using L = Layout<D>;
  constexpr int kBlockN = L::n, kStages = L::stages;
  constexpr int CHUNKS = D / 8;  // 16-byte chunks a row
  constexpr int ROWS_PER_PASS = 128 / CHUNKS;
  const int chunk = t % CHUNKS;
  const int block_mask = (1 << block_size_log2) - 1;
  for (int tile = tile_hi, it = 0; tile >= tile_lo; tile--, it++) {
    const int stage = it % kStages;
    mbar_wait(empty_bar + 8 * stage, ((it / kStages) & 1) ^ 1);
    const u32 k_dst = base + L::k + stage * L::kv_bytes;
    const u32 v_dst = base + L::v + stage * L::kv_bytes;
#pragma unroll 4
    for (int r = t / CHUNKS; r < kBlockN; r += ROWS_PER_PASS) {
      const int key = tile * kBlockN + r;
      const bool valid = key < ctx;
      const long long slot = valid ? ((long long)table[key >> block_size_log2] << block_size_log2) | (key & block_mask) : 0;
      const long long off = slot * kv_stride + kv_head_off + chunk * 8;
      const u32 dst = swizzled_offset(r, chunk, kBlockN);
      cp_async16(k_dst + dst, k_cache + off, valid);
      cp_async16(v_dst + dst, v_cache + off, valid);
    }
    mbar_arrive_on_copies(full_bar + 8 * stage);
  }
  asm volatile("cp.async.wait_all;\n" ::: "memory");
}

template <int D>
__device__ __forceinline__ void prefill_sm90a(const elem16_t* __restrict__ q, int q_stride,
                                              const elem16_t* __restrict__ k_cache,
                                              const elem16_t* __restrict__ v_cache, const int* __restrict__ block_tables,
                                              int max_blocks_per_seq, const int* __restrict__ context_lens,
                                              const int* __restrict__ cu_seqlens_q, elem16_t* __restrict__ out,
                                              int o_stride, float* __restrict__ lse, int num_heads, int num_kv_heads,
                                              int block_size_log2, float scale_log2, int sliding_window) {
  using L = Layout<D>;
  constexpr int kBlockN = L::n, kStages = L::stages;
  extern __shared__ unsigned char smem_raw[];
  __shared__ __align__(8) unsigned long long full_bars[kStages], empty_bars[kStages];
  const u32 base = (smem_addr(smem_raw) + 1023u) & ~1023u;  // the launcher adds 1 KB for this
  const u32 full_bar = smem_addr(full_bars);
  const u32 empty_bar = smem_addr(empty_bars);

  const int kvh = blockIdx.x;
  const int seq = blockIdx.y;
  const int group = num_heads / num_kv_heads;
  const int q_begin = cu_seqlens_q[seq];
  const int q_len = cu_seqlens_q[seq + 1] - q_begin;
  const int rows = q_len * group;
  const int row0 = (gridDim.z - 1 - blockIdx.z) * kBlockM;
  if (row0 >= rows) return;
  const int ctx = context_lens[seq];
  const int pos0 = ctx - q_len;
  const int max_pos = pos0 + (min(rows, row0 + kBlockM) - 1) / group;
  const int key_lo = sliding_window > 0 ? max(0, pos0 + row0 / group - sliding_window + 1) : 0;
  const int tile_lo = key_lo / kBlockN;
  const int tile_hi = max_pos / kBlockN;

  const int tid = threadIdx.x;
  if (tid == 0) {
#pragma unroll
    for (int s = 0; s < kStages; s++) {
      mbar_init(full_bar + 8 * s, 128);                // every producer thread, once its copies land
      mbar_init(empty_bar + 8 * s, 128 * kConsumers);  // every consumer thread, once its P V has read the stage
    }
  }
  __syncthreads();

  const int wg = tid / 128;
  const int t = tid % 128;
  if (wg == 0) {
    setmaxnreg_dec<kProducerRegs>();
    produce<D>(base, full_bar, empty_bar, k_cache, v_cache, block_tables + (long long)seq * max_blocks_per_seq,
               block_size_log2, ctx, num_kv_heads * D, kvh * D, tile_lo, tile_hi, t);
    return;
  }
  setmaxnreg_inc<kConsumerRegs>();
  const int cw = wg - 1;
  const int wg_row0 = row0 + cw * 64;

  // This warpgroup's Q rows -> its swizzled tile (rows past the sequence are zero), visible to wgmma.
  constexpr int CHUNKS = D / 8;
  const u32 q_tile = base + cw * L::q_bytes;
#pragma unroll
  for (int c = t; c < 64 * CHUNKS; c += 128) {
    const int r = c / CHUNKS;
    const int ch = c % CHUNKS;
    const int R = wg_row0 + r;
    const bool valid = R < rows;
    const elem16_t* src = valid ? q + (long long)(q_begin + R / group) * q_stride + (kvh * group + R % group) * D + ch * 8 : q;
    cp_async16(q_tile + swizzled_offset(r, ch, 64), src, valid);
  }
  asm volatile("cp.async.wait_all;\n" ::: "memory");
  fence_proxy_async();
  named_barrier_sync(1 + cw, 128);

  // This thread's rows: g and g + 8 of its warp's 16 (rows past the sequence take the last row's position).
  const int warp = t / 32;
  const int lane = t % 32;
  const int g = lane >> 2;
  const int tig = lane & 3;
  int row_pos[2];
#pragma unroll
  for (int i = 0; i < 2; i++) {
    const int R = wg_row0 + warp * 16 + g + 8 * i;
    row_pos[i] = R < rows ? pos0 + R / group : max_pos;
  }
  // The warpgroup's position range (for which tiles need a mask).
  const int wg_min_pos = pos0 + min(wg_row0, rows - 1) / group;
  const int wg_max_pos = pos0 + (min(rows, wg_row0 + 64) - 1) / group;

  // Descriptors of Q, and of stage 0's K and V (a stage's are these plus its offset); column block b of a tile of
  // `rows` rows starts b * rows * 128 bytes in, and a 16-wide k step inside a block 32 bytes further.
  const unsigned long long q_desc = smem_desc(q_tile, 16, 1024);
  const unsigned long long k_desc = smem_desc(base + L::k, 16, 1024);
  const unsigned long long v_desc = smem_desc(base + L::v, kBlockN * 128, 1024);
  auto k_step = [](int kk, int rows) { return (unsigned long long)(((kk >> 2) * rows * 128 + (kk & 3) * 32) >> 4); };

  float o[D / 8][4];
#pragma unroll
  for (int d = 0; d < D / 8; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float m[2] = {ATTN_NEG_INF, ATTN_NEG_INF};
  float l[2] = {0.f, 0.f};

  for (int tile = tile_hi, it = 0; tile >= tile_lo; tile--, it++) {
    const int stage = it % kStages;
    const unsigned long long stage_off = (unsigned long long)(stage * L::kv_bytes) >> 4;
    mbar_wait(full_bar + 8 * stage, (it / kStages) & 1);
    fence_proxy_async();

    float s[kBlockN / 8][4];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
      wgmma_ss<kBlockN>(s, q_desc + k_step(kk, 64), k_desc + stage_off + k_step(kk, kBlockN), kk > 0);
    wgmma_commit();
    wgmma_wait<0>();
    pin_registers(s);

    const int n0 = tile * kBlockN;
    if (n0 + kBlockN - 1 > wg_min_pos || (sliding_window > 0 && n0 <= wg_max_pos - sliding_window)) {
#pragma unroll
      for (int j = 0; j < kBlockN / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int key = n0 + j * 8 + tig * 2 + (e & 1);
          const int pos = row_pos[e >> 1];
          if (key > pos || (sliding_window > 0 && key <= pos - sliding_window)) s[j][e] = ATTN_NEG_INF;
        }
    }
    online_softmax<kBlockN / 8, D / 8>(s, o, m, l, scale_log2);

    // P (16-bit) as wgmma A fragments, 16 keys each: the accumulator layout of two n8 chunks is the A layout.
    u32 p[kBlockN / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; kk++) {
      p[kk][0] = pack_x2(s[2 * kk][0], s[2 * kk][1]);
      p[kk][1] = pack_x2(s[2 * kk][2], s[2 * kk][3]);
      p[kk][2] = pack_x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      p[kk][3] = pack_x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
    pin_registers(o);
    pin_registers(p);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; kk++) {
      // 16 keys = two 8-row groups of 1024 bytes; head sizes past 128 take two 128-column halves.
      const unsigned long long v_kk = v_desc + stage_off + ((kk * 16 * 128) >> 4);
      if constexpr (D <= 128) {
        wgmma_rs<D>(o, p[kk], v_kk);
      } else {
        wgmma_rs<128, 0>(o, p[kk], v_kk);
        wgmma_rs<128, 16>(o, p[kk], v_kk + ((2 * kBlockN * 128) >> 4));
      }
    }
    wgmma_commit();
    wgmma_wait<0>();
    pin_registers(o);
    pin_registers(p);
    mbar_arrive(empty_bar + 8 * stage);
  }

#pragma unroll
  for (int i = 0; i < 2; i++) {
    float sum = l[i];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const int R = wg_row0 + warp * 16 + g + 8 * i;
    if (R >= rows) continue;
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    const int token = q_begin + R / group;
    const int head = kvh * group + R % group;
    elem16_t* dst = out + (long long)token * o_stride + head * D + tig * 2;
#pragma unroll
    for (int d = 0; d < D / 8; d++)
      *reinterpret_cast<u32*>(dst + d * 8) = pack_x2(o[d][2 * i] * inv, o[d][2 * i + 1] * inv);
    if (tig == 0) lse[(long long)token * num_heads + head] = sum > 0.f ? (m[i] + __log2f(sum)) * ATTN_LN2 : ATTN_NEG_INF;
  }
}

}  // namespace

#define PAGODA_FLASH_PREFILL_SM90A(D)                                                                              \
  extern "C" __global__ void __launch_bounds__(kThreads, 1) flash_prefill_sm90a_hd##D(                           \
      const elem16_t* q, int q_stride, const elem16_t* k_cache, const elem16_t* v_cache, const int* block_tables, \
      int max_blocks_per_seq, const int* context_lens, const int* cu_seqlens_q, elem16_t* out, int o_stride,      \
      float* lse, int num_heads, int num_kv_heads, int block_size_log2, float scale_log2, int sliding_window) {   \
    PDL_ENTER();                                                                                                 \
    prefill_sm90a<D>(q, q_stride, k_cache, v_cache, block_tables, max_blocks_per_seq, context_lens, cu_seqlens_q, \
                     out, o_stride, lse, num_heads, num_kv_heads, block_size_log2, scale_log2, sliding_window);   \
  }

// The launcher builds one head size per module (PAGODA_HEAD_DIM); without it every size is built.
#if !defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 64
PAGODA_FLASH_PREFILL_SM90A(64)
#endif
#if !defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 128
PAGODA_FLASH_PREFILL_SM90A(128)
#endif
#if !defined(PAGODA_HEAD_DIM) || PAGODA_HEAD_DIM == 256
PAGODA_FLASH_PREFILL_SM90A(256)
#endif
