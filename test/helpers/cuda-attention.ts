import { probeCuda } from '../../src/backend/cuda/device.ts';
import type { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { cudaAttentionRuntime, FlashAttention } from '../../src/backend/cuda/flash-attention.ts';
import { CudaUnavailable } from '../../src/backend/cuda/libs.ts';
import { KernelModules } from '../../src/backend/cuda/modules.ts';
import { Nvrtc } from '../../src/backend/cuda/nvrtc.ts';

/** The CUDA driver and the attention launchers on GPU 0, or why there are none (for `test(..., { skip })`). */
export function openCudaAttention():
  | { drv: CudaDriver; fa: FlashAttention; skip: false }
  | { drv: null; fa: null; skip: string } {
  const probe = probeCuda();
  if (probe instanceof CudaUnavailable) return { drv: null, fa: null, skip: `no usable CUDA GPU: ${probe.reason}` };
  const drv = probe.driver;
  return { drv, fa: new FlashAttention(cudaAttentionRuntime(drv, new KernelModules(drv, Nvrtc.open()))), skip: false };
}
