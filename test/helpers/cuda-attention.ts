import { probeCuda } from '../../src/backend/cuda/device.ts';
import type { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { type AttentionRuntime, cudaAttentionRuntime } from '../../src/backend/cuda/flash-attention.ts';
import { CudaUnavailable } from '../../src/backend/cuda/libs.ts';
import { KernelModules } from '../../src/backend/cuda/modules.ts';
import { Nvrtc } from '../../src/backend/cuda/nvrtc.ts';

/** The CUDA driver and the attention kernels' runtime on GPU 0, or why there are none (for `test(..., { skip })`). */
export function openCudaAttention():
  | { drv: CudaDriver; rt: AttentionRuntime; skip: false }
  | { drv: null; rt: null; skip: string } {
  const probe = probeCuda();
  if (probe instanceof CudaUnavailable) return { drv: null, rt: null, skip: `no usable CUDA GPU: ${probe.reason}` };
  const drv = probe.driver;
  return { drv, rt: cudaAttentionRuntime(drv, new KernelModules(drv, Nvrtc.open())), skip: false };
}
