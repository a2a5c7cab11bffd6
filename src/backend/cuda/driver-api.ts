import type { LibraryHandle } from 'koffi';

/** cuDeviceGetAttribute ids (cuda.h CUdevice_attribute). */
export const ATTR = { multiprocessorCount: 16, ccMajor: 75, ccMinor: 76, maxSharedPerBlockOptin: 97 } as const;

/** The driver API entry points pagoda calls, bound through koffi (versioned `_v2` symbols where they exist). */
export function bindDriver(lib: LibraryHandle) {
  const f = (s: string) => lib.func(s);
  return {
    cuInit: f('int cuInit(unsigned int)'),
    cuDriverGetVersion: f('int cuDriverGetVersion(_Out_ int *v)'),
    cuGetErrorName: f('int cuGetErrorName(int err, _Out_ const char **name)'),
    cuDeviceGetCount: f('int cuDeviceGetCount(_Out_ int *n)'),
    cuDeviceGet: f('int cuDeviceGet(_Out_ int *d, int ordinal)'),
    cuDeviceGetName: f('int cuDeviceGetName(_Out_ uint8_t *name, int len, int dev)'),
    cuDeviceGetAttribute: f('int cuDeviceGetAttribute(_Out_ int *v, int attr, int dev)'),
    cuDeviceTotalMem: f('int cuDeviceTotalMem_v2(_Out_ size_t *bytes, int dev)'),
    cuDevicePrimaryCtxRetain: f('int cuDevicePrimaryCtxRetain(_Out_ void **ctx, int dev)'),
    cuDevicePrimaryCtxRelease: f('int cuDevicePrimaryCtxRelease_v2(int dev)'),
    cuCtxSetCurrent: f('int cuCtxSetCurrent(void *ctx)'),
    cuCtxSynchronize: f('int cuCtxSynchronize()'),
    cuMemGetInfo: f('int cuMemGetInfo_v2(_Out_ size_t *free, _Out_ size_t *total)'),
    cuMemAlloc: f('int cuMemAlloc_v2(_Out_ uint64_t *p, size_t n)'),
    cuMemFree: f('int cuMemFree_v2(uint64_t p)'),
    cuMemAllocHost: f('int cuMemAllocHost_v2(_Out_ void **p, size_t n)'),
    cuMemFreeHost: f('int cuMemFreeHost(void *p)'),
    cuMemcpyHtoDAsync: f('int cuMemcpyHtoDAsync_v2(uint64_t dst, const void *src, size_t n, void *stream)'),
    cuMemcpyHtoDAsyncAddr: f('int cuMemcpyHtoDAsync_v2(uint64_t dst, uint64_t src, size_t n, void *stream)'),
    cuMemcpyDtoHAsync: f('int cuMemcpyDtoHAsync_v2(void *dst, uint64_t src, size_t n, void *stream)'),
    cuMemcpyDtoHAsyncAddr: f('int cuMemcpyDtoHAsync_v2(uint64_t dst, uint64_t src, size_t n, void *stream)'),
    cuMemcpyDtoDAsync: f('int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t n, void *stream)'),
    /** The copy's CUDA_MEMCPY2D as 16 64-bit words (driver.ts copy2d writes them). */
    cuMemcpy2DAsync: f('int cuMemcpy2DAsync_v2(const uint64_t *copy, void *stream)'),
    cuMemsetD32Async: f('int cuMemsetD32Async(uint64_t dst, unsigned int value, size_t n, void *stream)'),
    cuModuleLoadData: f('int cuModuleLoadData(_Out_ void **m, const void *image)'),
    cuModuleGetFunction: f('int cuModuleGetFunction(_Out_ void **fn, void *m, const char *name)'),
    cuModuleUnload: f('int cuModuleUnload(void *m)'),
    cuFuncSetAttribute: f('int cuFuncSetAttribute(void *fn, int attr, int value)'),
    cuFuncGetAttribute: f('int cuFuncGetAttribute(_Out_ int *v, int attr, void *fn)'),
    cuLaunchKernel: f(
      'int cuLaunchKernel(void *fn, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int smem, void *stream, uint64_t params, void *extra)',
    ),
    cuStreamCreate: f('int cuStreamCreate(_Out_ void **s, unsigned int flags)'),
    cuStreamSynchronize: f('int cuStreamSynchronize(void *s)'),
    cuStreamDestroy: f('int cuStreamDestroy_v2(void *s)'),
    cuStreamBeginCapture: f('int cuStreamBeginCapture_v2(void *s, int mode)'),
    cuStreamEndCapture: f('int cuStreamEndCapture(void *s, _Out_ void **graph)'),
    cuGraphInstantiate: f('int cuGraphInstantiateWithFlags(_Out_ void **exec, void *graph, uint64_t flags)'),
    cuGraphLaunch: f('int cuGraphLaunch(void *exec, void *stream)'),
    cuGraphDestroy: f('int cuGraphDestroy(void *graph)'),
    cuGraphExecDestroy: f('int cuGraphExecDestroy(void *exec)'),
    cuEventCreate: f('int cuEventCreate(_Out_ void **e, unsigned int flags)'),
    cuEventDestroy: f('int cuEventDestroy_v2(void *e)'),
    cuEventRecord: f('int cuEventRecord(void *e, void *stream)'),
    cuEventSynchronize: f('int cuEventSynchronize(void *e)'),
    cuEventQuery: f('int cuEventQuery(void *e)'),
    cuEventElapsedTime: f('int cuEventElapsedTime(_Out_ float *ms, void *start, void *end)'),
  };
}

/** cuLaunchKernelEx (CUDA 12.0+), config and params by address; null when the driver lacks the symbol. */
export function bindLaunchEx(lib: LibraryHandle) {
  try {
    return lib.func('int cuLaunchKernelEx(uint64_t config, void *fn, uint64_t params, void *extra)');
  } catch {
    return null;
  }
}
