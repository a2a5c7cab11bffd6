// Mixture-of-experts block: route (softmax, top-k), group the (token, slot) pairs by expert, one grouped GEMM launch
// per projection over the grouped rows (a grouped GEMV for a decode step's few rows), then a weighted combine back
// into token order. Every grid depends on the token count alone (no host decisions), so decode steps capture into
// CUDA graphs.
#include "common.cuh"

// A grouped GEMM tile: MOE_BM grouped rows of one expert x MOE_BN output columns, MOE_BK inputs at a time.
#define MOE_BM 32
#define MOE_BN 64
#define MOE_BK 32
#define MOE_THREADS 256

// One thread per token: softmax over its `experts` router logits (float), the k most probable experts (the lower id
// first on a tie) into ids [tokens, k], their probabilities (divided by their sum when norm) into weights.
extern "C" __global__ void moe_route(int* __restrict__ ids, float* __restrict__ weights, const T* __restrict__ logits,
                                     int tokens, int experts, int k, int norm) {
  PDL_ENTER();
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= tokens) return;
  const T* l = logits + (long long)t * experts;
  float mx = -INFINITY;
  for (int e = 0; e < experts; e++) mx = fmaxf(mx, to_f(l[e]));
  float z = 0.f;
  for (int e = 0; e < experts; e++) z += expf(to_f(l[e]) - mx);
  float kept = 0.f, prev = INFINITY;
  int prev_id = -1;
  for (int j = 0; j < k; j++) {
    // The next expert after (prev, prev_id) in the order (logit descending, id ascending).
    int best = -1;
    float bv = -INFINITY;
    for (int e = 0; e < experts; e++) {
      const float v = to_f(l[e]);
      const bool after = v < prev || (v == prev && e > prev_id);
      if (after && (best < 0 || v > bv)) best = e, bv = v;
    }
    const float p = expf(bv - mx);
    ids[t * k + j] = best;
    weights[t * k + j] = p;
    kept += p;
    prev = bv, prev_id = best;
  }
  const float s = norm ? 1.f / kept : 1.f / z;
  for (int j = 0; j < k; j++) weights[t * k + j] *= s;
}

// One block (experts <= 1024): per expert, the pairs p = token * k + slot routed to it, in pair order: offsets
// [experts + 1] into pairs [n]; pos [n] is the inverse (where pair p sits in the grouped order).
extern "C" __global__ void moe_group(int* __restrict__ offsets, int* __restrict__ pairs, int* __restrict__ pos,
                                     const int* __restrict__ ids, int n, int experts) {
  PDL_ENTER();
  __shared__ int start[1024];
  for (int e = threadIdx.x; e < experts; e += blockDim.x) {
    int c = 0;
    for (int p = 0; p < n; p++) c += ids[p] == e;
    start[e] = c;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int s = 0;
    for (int e = 0; e < experts; e++) {
      const int c = start[e];
      offsets[e] = start[e] = s;
      s += c;
    }
    offsets[experts] = s;
  }
  __syncthreads();
  for (int e = threadIdx.x; e < experts; e += blockDim.x) {
    int o = start[e];
    for (int p = 0; p < n; p++) {
      if (ids[p] != e) continue;
      pairs[o] = p;
      pos[p] = o++;
    }
  }
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

// The expert of grouped row r (r < offsets[experts]): the largest e with offsets[e] <= r, which is never an empty one.
__device__ __forceinline__ int expert_of(const int* __restrict__ offsets, int experts, int r) {
  int lo = 0, hi = experts - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (offsets[mid] <= r) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// The same product as moe_gemm for the few grouped rows of a decode step, as a matrix-vector product: block row
// blockIdx.y is one grouped row, each warp MOE_GEMV_COLS of its expert's weight rows, read once in 16-byte vectors
// along k (the tile kernel's 32-row tiles would be nearly empty and its scalar loads latency-bound). Needs k to be a
// multiple of the vector (the launcher checks) and 16-byte aligned bases (arena and weight allocations are).
#define MOE_GEMV_WARPS 8
#define MOE_GEMV_COLS 2
extern "C" __global__ void __launch_bounds__(MOE_GEMV_WARPS * 32)
    moe_gemv(T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ w, const int* __restrict__ offsets,
             const int* __restrict__ pairs, int rows, int experts, int n, int k, int gather_k) {
  PDL_WAIT();
  PDL_LAUNCH_DEPENDENTS();
  const int r = blockIdx.y, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int c0 = (blockIdx.x * MOE_GEMV_WARPS + warp) * MOE_GEMV_COLS;
  if (r >= rows || c0 >= n) return;  // whole warps: the shuffles below see every lane
  const int e = expert_of(offsets, experts, r);
  const int src = gather_k > 0 ? pairs[r] / gather_k : r;
  constexpr int VEC = 16 / (int)sizeof(T);
  const uint4* xr = reinterpret_cast<const uint4*>(x + (long long)src * k);
  const uint4* wr[MOE_GEMV_COLS];
#pragma unroll
  for (int j = 0; j < MOE_GEMV_COLS; j++) {
    // A ragged last pair re-reads the last row (its sum is not written).
    wr[j] = reinterpret_cast<const uint4*>(w + ((long long)e * n + min(c0 + j, n - 1)) * k);
  }
  float acc[MOE_GEMV_COLS] = {};
  for (int i = lane; i < k / VEC; i += 32) {
    const uint4 xu = xr[i];
    const T* xv = reinterpret_cast<const T*>(&xu);
#pragma unroll
    for (int j = 0; j < MOE_GEMV_COLS; j++) {
      const uint4 wu = __ldg(wr[j] + i);
      const T* wv = reinterpret_cast<const T*>(&wu);
#pragma unroll
      for (int v = 0; v < VEC; v++) acc[j] += to_f(wv[v]) * to_f(xv[v]);
    }
  }
#pragma unroll
  for (int j = 0; j < MOE_GEMV_COLS; j++) acc[j] = warp_sum(acc[j]);
  if (lane == 0) {
#pragma unroll
    for (int j = 0; j < MOE_GEMV_COLS; j++)
      if (c0 + j < n) y[(long long)r * n + c0 + j] = from_f(acc[j]);
  }
}

// out[t, :] = sum_j weights[t * k + j] * d[pos[t * k + j], :] (slots in order), plus the shared expert's s[t, :]
// scaled by sigmoid(shared_gate[t]) (by 1 when shared_gate is null; no shared term when s is null).
extern "C" __global__ void moe_combine(T* __restrict__ out, const T* __restrict__ d, const int* __restrict__ pos,
                                       const float* __restrict__ weights, const T* __restrict__ s,
                                       const T* __restrict__ shared_gate, int tokens, int hidden, int k) {
  PDL_ENTER();
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (long long)tokens * hidden;
       i += (long long)gridDim.x * blockDim.x) {
    const int t = (int)(i / hidden), h = (int)(i - (long long)t * hidden);
    float acc = 0.f;
    for (int j = 0; j < k; j++) acc += weights[t * k + j] * to_f(d[(long long)pos[t * k + j] * hidden + h]);
    if (s) {
      const float g = shared_gate ? 1.f / (1.f + expf(-to_f(shared_gate[t]))) : 1.f;
      acc += g * to_f(s[i]);
    }
    out[i] = from_f(acc);
  }
}
