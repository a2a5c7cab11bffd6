// Mixture-of-experts block: route (softmax, top-k), group the (token, slot) pairs by expert (one launch for both at
// decode), one grouped GEMM launch per projection over the grouped rows (moe_gemv.cu for a decode step's few tokens),
// then a weighted combine back into token order. Every grid depends on the token count alone (no host decisions), so
// decode steps capture into CUDA graphs.
#include "common.cuh"
#include "moe_combine.cuh"

// A grouped GEMM tile: MOE_BM grouped rows of one expert x MOE_BN output columns, MOE_BK inputs at a time.
#define MOE_BM 32
#define MOE_BN 64
#define MOE_BK 32
#define MOE_THREADS 256
// Router logits a lane of route_token keeps in registers (a warp: 32 * ROUTE_CACHE experts'; more are read from L2).
#define ROUTE_CACHE 8

// Visits a lane's router logits (expert e, logit) in the strided scan's order: the first ROUTE_CACHE from `cached`,
// the rest from L2. (A template, not a generic lambda: NVRTC compiles no unannotated call operator templates.)
template <class Visit>
__device__ __forceinline__ void each_logit(const float (&cached)[ROUTE_CACHE], const T* l, int lane, int experts,
                                           Visit&& visit) {
#pragma unroll
  for (int i = 0; i < ROUTE_CACHE; i++)
    if (lane + 32 * i < experts) visit(lane + 32 * i, cached[i]);
  for (int e = lane + 32 * ROUTE_CACHE; e < experts; e += 32) visit(e, to_f(__ldcg(l + e)));
}

// One warp per token t: softmax over its `experts` router logits (float), the k most probable experts (the lower id
// first on a tie) into ids [tokens, k], their probabilities (divided by their sum when norm) into weights. Each of the
// k rounds is a strided scan and a warp arg-max under one total order, so every lane agrees on the winner. The logits
// are read through L2 (ld.cg): moe_router_route's last block reads those other blocks of its grid just wrote.
__device__ void route_token(int* __restrict__ ids, float* __restrict__ weights, const T* logits, int t, int experts,
                            int k, int norm) {
  const int lane = threadIdx.x & 31;
  const T* l = logits + (long long)t * experts;
  // The k + 2 scans below are dependent rounds (Qwen3-30B-A3B: ten for its top 8 of 128): a lane's first ROUTE_CACHE
  // logits are read once into registers; experts past 32 * ROUTE_CACHE are read from L2 in every scan. The lane's
  // visiting order, and so every sum, is the plain strided scan's.
  float cached[ROUTE_CACHE];
#pragma unroll
  for (int i = 0; i < ROUTE_CACHE; i++) {
    const int e = lane + 32 * i;
    cached[i] = e < experts ? to_f(__ldcg(l + e)) : 0.f;
  }
  float mx = -INFINITY;
  each_logit(cached, l, lane, experts, [&](int, float f) { mx = fmaxf(mx, f); });
  mx = warp_max(mx);
  float z = 0.f;
  each_logit(cached, l, lane, experts, [&](int, float f) { z += expf(f - mx); });
  z = warp_sum(z);
  float kept = 0.f, prev = INFINITY;
  int prev_id = -1;
  for (int j = 0; j < k; j++) {
    // The next expert after (prev, prev_id) in the order (logit descending, id ascending).
    int best = -1;
    float bv = -INFINITY;
    each_logit(cached, l, lane, experts, [&](int e, float f) {
      // A NaN logit ranks last (as -inf), so k experts are always chosen and no id is -1.
      const float v = f != f ? -INFINITY : f;
      const bool after = v < prev || (v == prev && e > prev_id);
      if (after && (best < 0 || v > bv)) best = e, bv = v;
    });
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int ob = __shfl_xor_sync(0xffffffffu, best, o);
      if (ob >= 0 && (best < 0 || ov > bv || (ov == bv && ob < best))) best = ob, bv = ov;
    }
    const float p = expf(bv - mx);
    if (lane == 0) ids[t * k + j] = best, weights[t * k + j] = p;
    kept += p;
    prev = bv, prev_id = best;
  }
  const float s = norm ? 1.f / kept : 1.f / z;
  if (lane == 0)
    for (int j = 0; j < k; j++) weights[t * k + j] *= s;  // this lane's own writes above
}

// The whole block (experts <= 1024, count: shared [experts]): per expert, the pairs p = token * k + slot routed to it:
// offsets [experts + 1] into pairs [n]; pos [n] is the inverse (where pair p sits in the grouped order). Within an
// expert the pairs land in any order (shared atomics): every grouped row is computed on its own, so no result depends
// on it. active [min(n, experts)]: the experts with pairs, ascending, then -1 (moe_gemv's blocks, one per entry).
__device__ void group_pairs(int* __restrict__ offsets, int* __restrict__ pairs, int* __restrict__ pos,
                            int* __restrict__ active, const int* ids, int n, int experts, int* count) {
  const int lane = threadIdx.x & 31;
  for (int e = threadIdx.x; e < experts; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int p = threadIdx.x; p < n; p += blockDim.x) atomicAdd(&count[ids[p]], 1);
  __syncthreads();
  if (threadIdx.x < 32) {
    // Exclusive scan of the counts, 32 experts a step; count[e] becomes expert e's cursor.
    int base = 0, used = 0;
    for (int e0 = 0; e0 < experts; e0 += 32) {
      const int e = e0 + lane;
      const int c = e < experts ? count[e] : 0;
      int incl = c;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int v = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += v;
      }
      const unsigned nonempty = __ballot_sync(0xffffffffu, c > 0);
      if (e < experts) offsets[e] = count[e] = base + incl - c;
      if (c > 0) active[used + __popc(nonempty & ((1u << lane) - 1u))] = e;
      base += __shfl_sync(0xffffffffu, incl, 31);
      used += __popc(nonempty);
    }
    if (lane == 0) offsets[experts] = base;
    for (int j = used + lane; j < min(n, experts); j += 32) active[j] = -1;
  }
  __syncthreads();
  for (int p = threadIdx.x; p < n; p += blockDim.x) {
    const int o = atomicAdd(&count[ids[p]], 1);
    pairs[o] = p;
    pos[p] = o;
  }
}

// Routing for any token count: a warp per token.
extern "C" __global__ void moe_route(int* __restrict__ ids, float* __restrict__ weights, const T* __restrict__ logits,
                                     int tokens, int experts, int k, int norm) {
  PDL_ENTER();
  const int t = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (t < tokens) route_token(ids, weights, logits, t, experts, k, norm);
}

// Grouping for any pair count: one block.
extern "C" __global__ void moe_group(int* __restrict__ offsets, int* __restrict__ pairs, int* __restrict__ pos,
                                     int* __restrict__ active, const int* __restrict__ ids, int n, int experts) {
  PDL_ENTER();
  __shared__ int count[1024];
  group_pairs(offsets, pairs, pos, active, ids, n, experts, count);
}

// A decode step's routing and grouping in one launch: one block, a warp per token, then the grouping (the block's
// own writes of ids are visible to it after the barrier; ids is not __restrict__ so they are not read through the
// read-only cache).
extern "C" __global__ void moe_route_group(int* ids, float* __restrict__ weights, int* __restrict__ offsets,
                                           int* __restrict__ pairs, int* __restrict__ pos, int* __restrict__ active,
                                           const T* __restrict__ logits, int tokens, int experts, int k, int norm) {
  PDL_ENTER();
  __shared__ int count[1024];
  for (int t = threadIdx.x >> 5; t < tokens; t += blockDim.x >> 5)
    route_token(ids, weights, logits, t, experts, k, norm);
  __syncthreads();
  group_pairs(offsets, pairs, pos, active, ids, tokens * k, experts, count);
}

// A decode step's router logits [tokens <= ROUTER_TOKENS, experts] = x router^T (rounded to T, as the linear layer
// writes them) and, in the block that finishes last, moe_route_group's routing and grouping: no launch of its own.
// ROUTER_SPLIT warps share an expert's row, interleaved over the hidden size in 16-byte loads (hidden a whole number
// of them: the launcher checks); their sums meet in shared memory in a fixed order. Each block fences its logits
// before counting itself in `done`, which is zero between launches (the last block resets it; the next launch waits
// for this grid), so the last block sees every logit.
#define ROUTER_SPLIT 4
#define ROUTER_ROWS (MOE_THREADS / 32 / ROUTER_SPLIT)
#define ROUTER_TOKENS 8
extern "C" __global__ void __launch_bounds__(MOE_THREADS)
    moe_router_route(T* logits, int* ids, float* __restrict__ weights, int* __restrict__ offsets,
                     int* __restrict__ pairs, int* __restrict__ pos, int* __restrict__ active,
                     unsigned* __restrict__ done, const T* __restrict__ x, const T* __restrict__ router, int tokens,
                     int hidden, int experts, int k, int norm) {
  PDL_ENTER();
  __shared__ float partial[MOE_THREADS / 32][ROUTER_TOKENS];
  __shared__ int count[1024];
  __shared__ bool last;
  constexpr int VEC = 16 / sizeof(T);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int e = blockIdx.x * ROUTER_ROWS + warp / ROUTER_SPLIT;
  float acc[ROUTER_TOKENS];
#pragma unroll
  for (int t = 0; t < ROUTER_TOKENS; t++) acc[t] = 0.f;
  if (e < experts) {
    const uint4* w = reinterpret_cast<const uint4*>(router + (long long)e * hidden);
#pragma unroll 2
    for (int i = (warp % ROUTER_SPLIT) * 32 + lane; i < hidden / VEC; i += 32 * ROUTER_SPLIT) {
      const uint4 wu = __ldg(w + i);
      const T* wv = reinterpret_cast<const T*>(&wu);
#pragma unroll
      for (int t = 0; t < ROUTER_TOKENS; t++) {
        if (t >= tokens) break;
        const uint4 xu = reinterpret_cast<const uint4*>(x + (long long)t * hidden)[i];
        const T* xv = reinterpret_cast<const T*>(&xu);
#pragma unroll
        for (int v = 0; v < VEC; v++) acc[t] += to_f(wv[v]) * to_f(xv[v]);
      }
    }
  }
#pragma unroll
  for (int t = 0; t < ROUTER_TOKENS; t++) acc[t] = warp_sum(acc[t]);
  if (lane == 0)
#pragma unroll
    for (int t = 0; t < ROUTER_TOKENS; t++) partial[warp][t] = acc[t];
  __syncthreads();
  // One thread per (expert of this block, token) adds the ROUTER_SPLIT partial sums in order.
  const int q = threadIdx.x / ROUTER_TOKENS, t = threadIdx.x % ROUTER_TOKENS;
  const int eq = blockIdx.x * ROUTER_ROWS + q;
  if (q < ROUTER_ROWS && t < tokens && eq < experts) {
    float s = 0.f;
#pragma unroll
    for (int p = 0; p < ROUTER_SPLIT; p++) s += partial[q * ROUTER_SPLIT + p][t];
    logits[(long long)t * experts + eq] = from_f(s);
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(done, 1u) == gridDim.x - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  if (threadIdx.x == 0) *done = 0;
  for (int tk = warp; tk < tokens; tk += MOE_THREADS / 32) route_token(ids, weights, logits, tk, experts, k, norm);
  __syncthreads();
  group_pairs(offsets, pairs, pos, active, ids, tokens * k, experts, count);
}

// Grouped GEMM: y[r, :] = x[src(r), :] w[e(r)]^T for the grouped rows r < rows, w [experts, n, k]. src(r) is
// pairs[r] / gather_k (a token's row, for the first projection) when gather_k > 0, else r (rows already grouped).
// blockIdx.y counts tiles expert by expert, each expert's rows padded to whole tiles: gridDim.y = ceil(rows / MOE_BM)
// + experts covers every expert; tiles past the last are idle. A tile reads only its expert's weights.
extern "C" __global__ void __launch_bounds__(MOE_THREADS) moe_gemm(T* __restrict__ y, const T* __restrict__ x,
                                                                   const T* __restrict__ w,
                                                                   const int* __restrict__ offsets,
                                                                   const int* __restrict__ pairs, int rows,
                                                                   int experts, int n, int k, int gather_k) {
  PDL_WAIT();
  __shared__ float xs[MOE_BM][MOE_BK + 1];
  __shared__ float ws[MOE_BN][MOE_BK + 1];
  __shared__ int src[MOE_BM];
  int tile = blockIdx.y, e = 0, r0 = 0, r1 = 0;
  for (; e < experts; e++) {
    const int begin = offsets[e], count = offsets[e + 1] - begin;
    const int tiles = (count + MOE_BM - 1) / MOE_BM;
    if (tile < tiles) {
      r0 = begin + tile * MOE_BM;
      r1 = min(r0 + MOE_BM, begin + count);
      break;
    }
    tile -= tiles;
  }
  PDL_LAUNCH_DEPENDENTS();
  if (e == experts || r0 >= rows) return;
  const int c0 = blockIdx.x * MOE_BN;
  if (threadIdx.x < MOE_BM) {
    const int r = r0 + threadIdx.x;
    src[threadIdx.x] = r < r1 ? (gather_k > 0 ? pairs[r] / gather_k : r) : -1;
  }
  const T* we = w + (long long)e * n * k;
  // Each thread: 2 rows x 4 columns of the tile.
  const int tr = (threadIdx.x / 16) * 2, tc = (threadIdx.x % 16) * 4;
  float acc[2][4] = {};
  for (int k0 = 0; k0 < k; k0 += MOE_BK) {
    __syncthreads();
    for (int i = threadIdx.x; i < MOE_BM * MOE_BK; i += MOE_THREADS) {
      const int rr = i / MOE_BK, kk = i % MOE_BK;
      const int s = src[rr];
      xs[rr][kk] = s >= 0 && k0 + kk < k ? to_f(x[(long long)s * k + k0 + kk]) : 0.f;
    }
    for (int i = threadIdx.x; i < MOE_BN * MOE_BK; i += MOE_THREADS) {
      const int cc = i / MOE_BK, kk = i % MOE_BK;
      ws[cc][kk] = c0 + cc < n && k0 + kk < k ? to_f(we[(long long)(c0 + cc) * k + k0 + kk]) : 0.f;
    }
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < MOE_BK; kk++) {
      const float a0 = xs[tr][kk], a1 = xs[tr + 1][kk];
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const float b = ws[tc + j][kk];
        acc[0][j] += a0 * b;
        acc[1][j] += a1 * b;
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 2; i++) {
    const int r = r0 + tr + i;
    if (r >= r1) continue;
#pragma unroll
    for (int j = 0; j < 4; j++)
      if (c0 + tc + j < n) y[(long long)r * n + c0 + tc + j] = from_f(acc[i][j]);
  }
}

// out[t, :] = the mixture (moe_combined) for any token count; moe_down_combine does it for a decode step.
extern "C" __global__ void moe_combine(T* __restrict__ out, const T* __restrict__ d, const int* __restrict__ pos,
                                       const float* __restrict__ weights, const T* __restrict__ s,
                                       const T* __restrict__ shared_gate, int tokens, int hidden, int k) {
  PDL_ENTER();
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (long long)tokens * hidden;
       i += (long long)gridDim.x * blockDim.x) {
    const int t = (int)(i / hidden), h = (int)(i - (long long)t * hidden);
    out[i] = moe_combined(d, pos, weights, s, shared_gate, t, h, hidden, k);
  }
}
