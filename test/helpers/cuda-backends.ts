import type { DType } from '../../src/backend/backend.ts';
import { CudaBackend, type CudaBackendOptions } from '../../src/backend/cuda/backend.ts';

/**
 * One eager (graph-free) CUDA backend per storage type, made on first use and shared by a test file's tests; `opts`:
 * settings of its own (e.g. an FP8 GEMV route).
 */
export function backendPerDtype(opts: Omit<Partial<CudaBackendOptions>, 'dtype'> = {}): (dtype: DType) => CudaBackend {
  const backends = new Map<DType, CudaBackend>();
  return (dtype) => {
    let b = backends.get(dtype);
    if (!b) backends.set(dtype, (b = new CudaBackend({ ...opts, dtype, graphs: false })));
    return b;
  };
}
