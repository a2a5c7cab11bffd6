import type { DType } from '../../src/backend/backend.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';

/** One eager (graph-free) CUDA backend per storage type, made on first use and shared by a test file's tests. */
export function backendPerDtype(): (dtype: DType) => CudaBackend {
  const backends = new Map<DType, CudaBackend>();
  return (dtype) => {
    let b = backends.get(dtype);
    if (!b) backends.set(dtype, (b = new CudaBackend({ dtype, graphs: false })));
    return b;
  };
}
