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
// the same swizzled layout as K. Tiles past every row's position are never loaded (causal tile skipping). The plain
// build leaves the overlap of softmax and matrix work to the SM's schedulers between the two consumers; the switches
// in prefill_sm90a.cuh add FA3's pipelining (intra-warpgroup overlap, ping-pong turns), each a build of its own.
#include "prefill_sm90a.cuh"

namespace {

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
  // full K, empty K, then (kSplitKv) full V, empty V: kStages each.
  constexpr int kBarSets = kSplitKv ? 4 : 2;
  __shared__ __align__(8) unsigned long long bars[kBarSets * kStages];
  const u32 base = (smem_addr(smem_raw) + 1023u) & ~1023u;  // the launcher adds 1 KB for this
  auto bar_set = [&](int b) { return smem_addr(bars) + 8 * kStages * b; };
  const Ring<kStages> ring{bar_set(0), bar_set(kSplitKv ? 2 : 0), bar_set(1), bar_set(kSplitKv ? 3 : 1)};

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
  const int n_tiles = tile_hi - tile_lo + 1;

  const int tid = threadIdx.x;
  if (tid == 0) {
    // full: every producer thread, once its copies land; empty: every consumer thread, once done with the stage.
#pragma unroll
    for (int b = 0; b < kBarSets * kStages; b++)
      mbar_init(smem_addr(bars + b), b / kStages % 2 == 0 ? 128 : 128 * kConsumers);
  }
  __syncthreads();

  const int wg = tid / 128;
  const int t = tid % 128;
  if (wg == 0) {
    setmaxnreg_dec<L::producer_regs>();
    produce<D>(base, ring, k_cache, v_cache, block_tables + (long long)seq * max_blocks_per_seq, block_size_log2, ctx,
               num_kv_heads * D, kvh * D, tile_lo, tile_hi, t);
    return;
  }
  setmaxnreg_inc<L::consumer_regs>();
  const int cw = wg - 1;
  const int wg_row0 = row0 + cw * 64;
  const Turns turns(cw);

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
  auto stage_off = [](int it) { return (unsigned long long)((it % kStages) * L::kv_bytes) >> 4; };

  float o[D / 8][4];
#pragma unroll
  for (int d = 0; d < D / 8; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float m[2] = {ATTN_NEG_INF, ATTN_NEG_INF};
  float l[2] = {0.f, 0.f};
  float s[kBlockN / 8][4];
  u32 p[kBlockN / 16][4];
  float alpha[2];

  // S = Q K^T of the CTA's it-th tile, issued and committed (not waited for).
  auto issue_qk = [&](int it) {
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
      wgmma_ss<kBlockN>(s, q_desc + k_step(kk, 64), k_desc + stage_off(it) + k_step(kk, kBlockN), kk > 0);
    wgmma_commit();
  };
  // O += P V of the it-th tile, issued and committed.
  auto issue_pv = [&](int it) {
    pin_registers(o);
    pin_registers(p);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; kk++) {
      // 16 keys = two 8-row groups of 1024 bytes; head sizes past 128 take two 128-column halves.
      const unsigned long long v_kk = v_desc + stage_off(it) + ((kk * 16 * 128) >> 4);
      if constexpr (D <= 128) {
        wgmma_rs<D>(o, p[kk], v_kk);
      } else {
        wgmma_rs<128, 0>(o, p[kk], v_kk);
        wgmma_rs<128, 16>(o, p[kk], v_kk + ((2 * kBlockN * 128) >> 4));
      }
    }
    wgmma_commit();
  };
  // S of the it-th tile -> its probabilities, the mask only on tiles that cross a row's causal or window edge (with
  // the tiles in reverse, the first and, under a window, the last few); alpha: O's factor, applied by the caller.
  auto softmax_tile = [&](int it) {
    const int n0 = (tile_hi - it) * kBlockN;
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
    softmax_rows<kBlockN / 8>(s, m, l, scale_log2, alpha);
  };
  // The probabilities as P, 16-bit wgmma A fragments of 16 keys each (the accumulator layout of two n8 chunks is the
  // A layout).
  auto pack_p = [&]() {
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; kk++) {
      p[kk][0] = pack_x2(s[2 * kk][0], s[2 * kk][1]);
      p[kk][1] = pack_x2(s[2 * kk][2], s[2 * kk][3]);
      p[kk][2] = pack_x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      p[kk][3] = pack_x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
  };

  if constexpr (kOverlap) {
    // FA3's order: tile 0's S and softmax alone, then per tile S of this tile and P V of the previous issued in one
    // turn, this tile's softmax while that P V runs, O rescaled only before the next P V; the last P V after the loop.
    ring.wait_full(ring.full_k, 0);
    fence_proxy_async();
    turns.begin();
    issue_qk(0);
    turns.end(false);
    wgmma_wait<0>();
    pin_registers(s);
    ring.release(ring.empty_k, 0);
    softmax_tile(0);
    pack_p();
    for (int it = 1; it < n_tiles; it++) {
      ring.wait_full(ring.full_k, it);
      ring.wait_full(ring.full_v, it - 1);
      fence_proxy_async();
      turns.begin();
      issue_qk(it);
      rescale_rows(o, alpha);
      issue_pv(it - 1);
      turns.end(false);
      wgmma_wait<1>();
      pin_registers(s);
      ring.release(ring.empty_k, it);
      softmax_tile(it);
      pin_registers(s);  // the softmax before the wait, so it runs under the P V
      wgmma_wait<0>();
      pin_registers(o);
      pin_registers(p);  // the previous P, read by that P V until now
      ring.release(ring.empty_v, it - 1);
      pack_p();
    }
    ring.wait_full(ring.full_v, n_tiles - 1);
    fence_proxy_async();
    rescale_rows(o, alpha);
    turns.begin();
    issue_pv(n_tiles - 1);
    turns.end(true);
    wgmma_wait<0>();
    pin_registers(o);
    ring.release(ring.empty_v, n_tiles - 1);
  } else {
    for (int it = 0; it < n_tiles; it++) {
      ring.wait_full(ring.full_k, it);
      fence_proxy_async();
      turns.begin();
      issue_qk(it);
      turns.end(false);
      wgmma_wait<0>();
      pin_registers(s);
      softmax_tile(it);
      pack_p();
      rescale_rows(o, alpha);
      turns.begin();
      issue_pv(it);
      turns.end(it == n_tiles - 1);
      wgmma_wait<0>();
      pin_registers(o);
      pin_registers(p);
      ring.release(ring.empty_v, it);
    }
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
