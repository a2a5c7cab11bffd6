import type { Backend } from '../backend/backend.ts';
import { CpuBackend } from '../backend/cpu/backend.ts';
import { probeCuda } from '../backend/cuda/device.ts';
import type { CudaSettings } from '../backend/cuda/settings.ts';
import { ParallelBackend } from '../backend/parallel/backend.ts';
import { UserError } from '../util/errors.ts';

/** What a tensor-parallel load is asked for besides the rank count, to refuse what it cannot do yet. */
export interface TensorParallelRequest {
  device: 'cpu' | 'cuda';
  cuda?: Partial<CudaSettings>;
  quantization?: string;
  kvCompression?: unknown;
}

/**
 * Refuses, in one line, a tensor-parallel size above 1 where it cannot run: on CUDA (more ranks than devices, or the
 * NCCL path, which is not built yet), with quantized weights or with KV compression.
 */
export function checkTensorParallelLoad(size: number, req: TensorParallelRequest): void {
  if (size === 1) return;
  const flag = `--tensor-parallel-size ${size}`;
  if (req.device === 'cuda') {
    const probe = probeCuda({ cuda: req.cuda });
    const count = 'driver' in probe ? probe.driver.info.deviceCount : 0;
    if (count < size) throw new UserError(`${flag}: the CUDA driver sees ${count} device(s), fewer than ${size}`);
    throw new UserError(`${flag}: tensor parallelism over NCCL is not built yet (--device cpu simulates the ranks)`);
  }
  if (req.quantization) {
    throw new UserError(
      `${flag}: quantized weights (--quantization ${req.quantization}) cannot be split over ranks yet`,
    );
  }
  if (req.kvCompression) throw new UserError(`${flag}: --kv-compression cannot run with tensor parallelism yet`);
}

/** The CPU backend: one, or `size` of them as the simulated ranks of a ParallelBackend. */
export function cpuBackend(size: number, threads: number | undefined): Backend {
  if (size === 1) return new CpuBackend({ threads });
  return new ParallelBackend(Array.from({ length: size }, () => new CpuBackend({ threads })));
}
