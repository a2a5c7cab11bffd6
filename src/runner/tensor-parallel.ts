import type { Backend } from '../backend/backend.ts';
import { CpuBackend } from '../backend/cpu/backend.ts';
import type { CudaBackend } from '../backend/cuda/backend.ts';
import { probeCuda } from '../backend/cuda/device.ts';
import { CudaUnavailable } from '../backend/cuda/libs.ts';
import { Nccl, ncclVersionName } from '../backend/cuda/nccl.ts';
import { NcclCommunicator } from '../backend/cuda/nccl-communicator.ts';
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

/** How the one-GPU check asks for one rank through NCCL (CudaSettings.tpForceNccl). */
export const FORCE_NCCL = 'PAGODA_TP_FORCE_NCCL=1';

/** Whether CUDA runs the model through the NCCL path: at one rank only when forced (the plain path otherwise). */
export function cudaThroughNccl(size: number, cuda: Partial<CudaSettings> | undefined): boolean {
  return size > 1 || cuda?.tpForceNccl === true;
}

/**
 * Refuses, in one line, tensor parallelism where it cannot run: on CUDA more ranks than devices, or more than one
 * rank (one process drives one device so far); with quantized weights or with KV compression.
 */
export function checkTensorParallelLoad(size: number, req: TensorParallelRequest): void {
  if (!(req.device === 'cuda' ? cudaThroughNccl(size, req.cuda) : size > 1)) return;
  const flag = size > 1 ? `--tensor-parallel-size ${size}` : FORCE_NCCL;
  if (req.device === 'cuda' && size > 1) {
    const probe = probeCuda({ cuda: req.cuda });
    const count = 'driver' in probe ? probe.driver.info.deviceCount : 0;
    if (count < size) throw new UserError(`${flag}: the CUDA driver sees ${count} device(s), fewer than ${size}`);
    throw new UserError(
      `${flag}: NCCL over several GPUs is not built yet, one process drives one device (${FORCE_NCCL} runs one rank through NCCL; --device cpu simulates the ranks)`,
    );
  }
  if (req.quantization) {
    throw new UserError(
      `${flag}: quantized weights (--quantization ${req.quantization}) cannot be split over ranks yet`,
    );
  }
  if (req.kvCompression) throw new UserError(`${flag}: --kv-compression cannot run with tensor parallelism yet`);
}

/** CUDA rank backends as one ParallelBackend whose collectives go through NCCL (refused in one line without it). */
export function ncclBackend(ranks: readonly CudaBackend[], log: (line: string) => void): ParallelBackend {
  const flag = ranks.length > 1 ? `--tensor-parallel-size ${ranks.length}` : FORCE_NCCL;
  let nccl: Nccl;
  try {
    nccl = Nccl.open(ranks[0]!.ctx.settings.cudaRoots);
  } catch (e) {
    if (e instanceof CudaUnavailable) throw new UserError(`${flag}: ${e.message}`);
    throw e;
  }
  log(`tensor parallel: ${ranks.length} rank(s) on the GPU, collectives through NCCL ${ncclVersionName(nccl.version)}`);
  return new ParallelBackend(ranks, new NcclCommunicator(ranks, nccl));
}

/** The CPU backend: one, or `size` of them as the simulated ranks of a ParallelBackend. */
export function cpuBackend(size: number, threads: number | undefined): Backend {
  if (size === 1) return new CpuBackend({ threads });
  return new ParallelBackend(Array.from({ length: size }, () => new CpuBackend({ threads })));
}
