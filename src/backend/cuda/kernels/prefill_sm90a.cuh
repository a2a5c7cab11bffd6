// flash_prefill_sm90a.cu's build switches, shared-memory layout, K/V ring barriers, the consumers' wgmma turns and
// the producer warpgroup.
#pragma once
#include "wgmma.cuh"

// Build switches (flash-sizing.ts's Sm90aPrefillConfig; the launcher always passes them, these defaults are its own):
// PAGODA_WGMMA_BN keys per K/V tile and PAGODA_WGMMA_STAGES the ring's depth (Layout below);
// PAGODA_WGMMA_OVERLAP: FA3's intra-warpgroup overlap, a tile's S = Q K^T issued with the previous tile's O += P V and
// the softmax run while that P V is still on the tensor cores;
// PAGODA_WGMMA_PINGPONG: the two consumers issue their wgmmas in turns (Turns below), so one's softmax runs while the
// other's products hold the tensor cores.
#ifndef PAGODA_WGMMA_OVERLAP
#define PAGODA_WGMMA_OVERLAP 0
#endif
#ifndef PAGODA_WGMMA_PINGPONG
#define PAGODA_WGMMA_PINGPONG 0
#endif
constexpr bool kOverlap = PAGODA_WGMMA_OVERLAP != 0;
constexpr bool kPingpong = PAGODA_WGMMA_PINGPONG != 0;
// With the overlap a stage's K and V are released apart (K once S is computed, V once P V is), so K and V have
// barriers of their own and the producer refills K while the consumers still read V. Without it both go together.
constexpr bool kSplitKv = kOverlap;

constexpr int kConsumers = 2;  // consumer warpgroups, 64 query rows each
constexpr int kBlockM = 64 * kConsumers;
constexpr int kThreads = 128 * (1 + kConsumers);
static_assert(!kKvQuant, "the wgmma kernel reads a 16-bit cache");

// Keys per K/V tile and ring depth for head size D, and the byte offsets of the tiles from the 1024-aligned base:
// the consumers' Q tiles, then the K and V rings.
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
  static_assert(stages >= 2, "the consumers release a stage a tile after they start on it");
  // Registers a thread after setmaxnreg: 128 x 40 + 256 x 232 = 64,512, what the CTA starts with (168 each). The
  // overlap at head size 256 keeps a tile's S beside the previous P and O (32 + 16 + 128 a thread) and spills at 232:
  // FA3's split, 24 and 240 (the producer at head size 64 spills at 24, and needs none of it there).
  static constexpr int producer_regs = kOverlap && D == 256 ? 24 : 40;
  static constexpr int consumer_regs = kOverlap && D == 256 ? 240 : 232;
  static constexpr int q_bytes = 64 * D * 2;
  static constexpr int kv_bytes = n * D * 2;
  static constexpr int k = kConsumers * q_bytes;
  static constexpr int v = k + stages * kv_bytes;
};

// The ring's mbarriers (shared addresses of stage 0's; stage s's are 8 * s bytes further): a stage's K and V are
// `full` once the producer's copies landed and `empty` once both consumers are done reading them. Without kSplitKv
// the V barriers are the K ones. `it` counts the CTA's tiles from 0 (the highest tile).
template <int kStages>
struct Ring {
  u32 full_k, full_v, empty_k, empty_v;
  __device__ u32 at(u32 bar, int it) const { return bar + 8 * (it % kStages); }
  __device__ void wait_full(u32 bar, int it) const { mbar_wait(at(bar, it), (it / kStages) & 1); }
  // A fresh barrier passes at once: the ring starts empty.
  __device__ void wait_empty(u32 bar, int it) const { mbar_wait(at(bar, it), ((it / kStages) & 1) ^ 1); }
  __device__ void release(u32 bar, int it) const { mbar_arrive(at(bar, it)); }
};

// Ping-pong: consumer c's turn to issue is named barrier 3 + c over 256 threads, its own 128 syncing there before
// they issue and the other consumer's 128 arriving once they have issued theirs. Consumer 0 opens its first turn
// itself; consumer 1 skips the arrival after its last turn (no turn of consumer 0 follows), so every phase of both
// barriers completes. Both consumers take the same number of turns (they run over the same tiles). Ids 1 and 2 are
// the consumers' own (their Q tiles). Without kPingpong every call is empty.
struct Turns {
  int cw;
  __device__ explicit Turns(int consumer) : cw(consumer) {
    if (kPingpong && cw == 0) named_barrier_arrive(3, 256);
  }
  __device__ void begin() const {
    if (kPingpong) named_barrier_sync(3 + cw, 256);
  }
  __device__ void end(bool last) const {
    if (kPingpong && !(last && cw == 1)) named_barrier_arrive(4 - cw, 256);
  }
};

// Producer: K and V of every tile of the CTA (keys tile * kBlockN ...), from the highest tile down, into the ring,
// each once the consumers released its stage. Keys at or past the context are zero-filled. The copies are issued
// without waiting for them (cp.async arrives on the barrier when they land), so up to `stages` tiles are in flight.
template <int D>
__device__ __forceinline__ void produce(u32 base, Ring<Layout<D>::stages> ring, const elem16_t* __restrict__ k_cache,
                                        const elem16_t* __restrict__ v_cache, const int* __restrict__ table,
                                        int block_size_log2, int ctx, int kv_stride, int kv_head_off, int tile_lo,
                                        int tile_hi, int t) {
  using L = Layout<D>;
  constexpr int kBlockN = L::n, kStages = L::stages;
  constexpr int CHUNKS = D / 8;  // 16-byte chunks a row
  constexpr int ROWS_PER_PASS = 128 / CHUNKS;
  const int chunk = t % CHUNKS;
  const int block_mask = (1 << block_size_log2) - 1;
  // This thread's chunks of K and/or V rows of a tile, through the block table.
  auto copy = [&](int tile, int stage, bool with_k, bool with_v) {
    const u32 k_dst = base + L::k + stage * L::kv_bytes;
    const u32 v_dst = base + L::v + stage * L::kv_bytes;
#pragma unroll 4
    for (int r = t / CHUNKS; r < kBlockN; r += ROWS_PER_PASS) {
      const int key = tile * kBlockN + r;
      const bool valid = key < ctx;
      const long long slot = valid ? ((long long)table[key >> block_size_log2] << block_size_log2) | (key & block_mask) : 0;
      const long long off = slot * kv_stride + kv_head_off + chunk * 8;
      const u32 dst = swizzled_offset(r, chunk, kBlockN);
      if (with_k) cp_async16(k_dst + dst, k_cache + off, valid);
      if (with_v) cp_async16(v_dst + dst, v_cache + off, valid);
    }
  };
  for (int tile = tile_hi, it = 0; tile >= tile_lo; tile--, it++) {
    const int stage = it % kStages;
    ring.wait_empty(ring.empty_k, it);
    if constexpr (kSplitKv) {
      copy(tile, stage, true, false);
      mbar_arrive_on_copies(ring.at(ring.full_k, it));
      ring.wait_empty(ring.empty_v, it);
      copy(tile, stage, false, true);
    } else {
      copy(tile, stage, true, true);
    }
    mbar_arrive_on_copies(ring.at(ring.full_v, it));
  }
  asm volatile("cp.async.wait_all;\n" ::: "memory");
}
