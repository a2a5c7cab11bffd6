import { probeCuda } from '../../src/backend/cuda/device.ts';
import type { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { type AttentionRuntime, cudaAttentionRuntime } from '../../src/backend/cuda/flash-attention.ts';
import { CudaUnavailable } from '../../src/backend/cuda/libs.ts';
import { KernelModules } from '../../src/backend/cuda/modules.ts';
import { Nvrtc } from '../../src/backend/cuda/nvrtc.ts';
import { cudaSettings } from '../../src/backend/cuda/settings.ts';
import { settingsFromEnv } from '../../src/cli/settings.ts';

/**
 * The CUDA driver and the attention kernels' runtime, or why there are none (for `test(..., { skip })`). The
 * environment's CUDA settings apply as in the CLI (bench/kernels-device.sh reads the cubins from PAGODA_KERNEL_CACHE).
 */
export function openCudaAttention():
  | { drv: CudaDriver; rt: AttentionRuntime; skip: false }
  | { drv: null; rt: null; skip: string } {
  const settings = cudaSettings(settingsFromEnv().cuda);
  const probe = probeCuda({ cuda: settings });
  if (probe instanceof CudaUnavailable) return { drv: null, rt: null, skip: `no usable CUDA GPU: ${probe.reason}` };
  const drv = probe.driver;
  const modules = new KernelModules(drv, Nvrtc.open(settings.cudaRoots), settings.kernelCache);
  return { drv, rt: cudaAttentionRuntime(drv, modules), skip: false };
}
