#pragma once
// Programmatic dependent launch (sm_90+). The host launches our kernels so that each may start while the previous
// kernel in the stream is still finishing, so EVERY kernel runs PDL_WAIT() in every thread before it reads anything
// an earlier kernel wrote and before it writes anything (the activation arena is reused), and before any early
// return (a grid that ends without waiting would let its successor overtake its predecessor). Only immutable data
// (weights) may be touched before it. PDL_LAUNCH_DEPENDENTS() lets the next kernel's blocks be scheduled once every
// block of this grid has issued it; it implies nothing about memory. Both are no-ops without PDL and before sm_90.
// test/backend/kernel-pdl.test.ts checks every kernel has the wait.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define PDL_WAIT() asm volatile("griddepcontrol.wait;" ::: "memory")
#define PDL_LAUNCH_DEPENDENTS() asm volatile("griddepcontrol.launch_dependents;")
#else
#define PDL_WAIT() \
  do {             \
  } while (0)
#define PDL_LAUNCH_DEPENDENTS() \
  do {                          \
  } while (0)
#endif
// Both, at the top of a kernel that touches nothing before the wait.
#define PDL_ENTER()          \
  do {                       \
    PDL_WAIT();              \
    PDL_LAUNCH_DEPENDENTS(); \
  } while (0)
