// Hopper (sm_90a) building blocks for the warp-specialized attention kernel (flash_prefill_sm90a.cu): wgmma over
// shared-memory matrix descriptors with the 128-byte swizzle, its fences, mbarriers, named barriers and setmaxnreg.
// Only sources built for sm_90a include it (wgmma and setmaxnreg exist on no other target).
#pragma once
#include "attention_common.cuh"

#if PAGODA_DTYPE == 1
#define WG_TYPES "f32.f16.f16"
#else
#define WG_TYPES "f32.bf16.bf16"
#endif

// ---- Tile layout. A tile of 16-bit rows is stored as column blocks of 64 elements (128 bytes a row); a block holds
// its `rows` rows contiguously, each row's eight 16-byte chunks permuted by the 128-byte swizzle (chunk ^ row % 8),
// which is what the descriptors below describe and why ldmatrix-free wgmma reads it without bank conflicts. Tile bases
// are 1024-byte aligned (the swizzle repeats every 8 rows of 128 bytes and the hardware applies it to absolute
// addresses).

// Byte offset of 16-byte chunk `chunk` (8 elements) of row `row` in such a tile of `rows` rows.
__device__ __forceinline__ u32 swizzled_offset(int row, int chunk, int rows) {
  return (chunk >> 3) * rows * 128 + row * 128 + (((chunk & 7) ^ (row & 7)) << 4);
}

// A wgmma shared-memory matrix descriptor with the 128-byte swizzle: start address, leading- and stride-dimension
// byte offsets (each in 16-byte units). K-major operands (rows of the reduction dimension, Q and K) use only the
// stride: 1024 bytes from one 8-row group to the next. MN-major operands (V, whose rows are keys) also use the
// leading offset: the bytes from one 64-column block to the next.
__device__ __forceinline__ unsigned long long smem_desc(u32 addr, u32 leading_bytes, u32 stride_bytes) {
  return (unsigned long long)((addr & 0x3ffffu) >> 4) | ((unsigned long long)(leading_bytes >> 4) << 16) |
         ((unsigned long long)(stride_bytes >> 4) << 32) | (1ull << 62);
}

// ---- wgmma. Accumulators are float[N/8][4] arrays in the mma.sync C layout, per warp of the warpgroup: warp w owns
// rows 16w + lane/4 (regs 0, 1) and 16w + lane/4 + 8 (regs 2, 3), columns 8j + 2(lane%4) + {0, 1} of chunk j.
#define WG_F4(d, j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define WG_F32(d, j) \
  WG_F4(d, j), WG_F4(d, j + 1), WG_F4(d, j + 2), WG_F4(d, j + 3), WG_F4(d, j + 4), WG_F4(d, j + 5), WG_F4(d, j + 6), \
      WG_F4(d, j + 7)
#define WG_D32                                                                                                     \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
  "%24, %25, %26, %27, %28, %29, %30, %31}"
#define WG_D64                                                                                                     \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
  "%24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, "   \
  "%46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

// d[J0 .. J0 + N/8) (+)= A (64 x 16, K-major in shared memory) * B (N x 16, K-major in shared memory); the first of a
// sum passes accumulate = false. N is 64 or 128.
template <int N, int J0 = 0, int NJ>
__device__ __forceinline__ void wgmma_ss(float (&d)[NJ][4], unsigned long long a_desc, unsigned long long b_desc,
                                         bool accumulate) {
  static_assert(N == 64 || N == 128, "wgmma_ss: N is 64 or 128");
  if constexpr (N == 64) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16." WG_TYPES " " WG_D32 ", %32, %33, p, 1, 1, 0, 0;\n}\n"
        : WG_F32(d, J0)
        : "l"(a_desc), "l"(b_desc), "r"((int)accumulate));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16." WG_TYPES " " WG_D64 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
        : WG_F32(d, J0), WG_F32(d, J0 + 8)
        : "l"(a_desc), "l"(b_desc), "r"((int)accumulate));
  }
}

// d[J0 .. J0 + N/8) += A (64 x 16 in registers, the mma.sync A-fragment layout per warp) * B (16 x N, MN-major in
// shared memory: its rows are the reduction dimension). N is 64 or 128.
template <int N, int J0 = 0, int NJ>
__device__ __forceinline__ void wgmma_rs(float (&d)[NJ][4], const u32 (&a)[4], unsigned long long b_desc) {
  static_assert(N == 64 || N == 128, "wgmma_rs: N is 64 or 128");
  if constexpr (N == 64) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16." WG_TYPES " " WG_D32 ", {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
        : WG_F32(d, J0)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16." WG_TYPES " " WG_D64 ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
        : WG_F32(d, J0), WG_F32(d, J0 + 8)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc));
  }
}

// Before a warpgroup's first wgmma that reads registers other instructions wrote (accumulators, A fragments).
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most N committed wgmma groups of this warpgroup are pending.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Pins a register array at this point of the program. The compiler sees a wgmma's operands as read and written when
// it is issued: without a pin after the wait it could move reads of the accumulators above it, or reuse an A
// fragment's registers while the tensor cores still read them (and without one before the fence, move writes below).
template <int NJ>
__device__ __forceinline__ void pin_registers(float (&d)[NJ][4]) {
#pragma unroll
  for (int j = 0; j < NJ; j++)
#pragma unroll
    for (int e = 0; e < 4; e++) asm volatile("" : "+f"(d[j][e])::"memory");
}
template <int NJ>
__device__ __forceinline__ void pin_registers(u32 (&a)[NJ][4]) {
#pragma unroll
  for (int j = 0; j < NJ; j++)
#pragma unroll
    for (int e = 0; e < 4; e++) asm volatile("" : "+r"(a[j][e])::"memory");
}

// ---- Synchronization.
__device__ __forceinline__ void mbar_init(u32 bar, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Blocks until the barrier's phase of parity `parity` has completed (a fresh barrier: parity 1 passes at once).
__device__ __forceinline__ void mbar_wait(u32 bar, u32 parity) {
  asm volatile(
      "{\n.reg .pred done;\nWAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
__device__ __forceinline__ void mbar_arrive(u32 bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Arrives on the barrier once every cp.async this thread issued so far has landed (counted in the barrier's init).
__device__ __forceinline__ void mbar_arrive_on_copies(u32 bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
// Shared memory written through the generic proxy (cp.async, stores) made visible to wgmma's async proxy.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// A barrier among `threads` threads of the CTA (id 0 is __syncthreads').
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
// Arrives on such a barrier without waiting for it.
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
template <int REGS>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(REGS));
}
template <int REGS>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(REGS));
}
