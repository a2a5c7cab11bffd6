import { homedir } from 'node:os';
import { join } from 'node:path';
import type { PrefillKernel } from './flash-prefill-sm90a.ts';
import type { Fp8GemvChoice } from './fp8-gemv.ts';
import type { QuantGemmRoute } from './quant-gemm.ts';

/**
 * The CUDA backend's settings. The CLI reads them from the environment once (src/cli/settings.ts names each
 * variable) and passes them down; nothing under src/backend reads the environment.
 */
export interface CudaSettings {
  /** The device ordinal (PAGODA_CUDA_DEVICE). */
  device: number;
  /** Programmatic dependent launch where the device and driver have it (PAGODA_PDL=0 turns it off). */
  pdl: boolean;
  /** Decode GEMMs through kernels/gemv.cu where the table picks it (PAGODA_GEMV=0: always cuBLASLt). */
  gemv: boolean;
  /**
   * FP8 GEMMs with the token and weight-row scales applied by cuBLASLt (its outer-vector scale modes, cuBLAS 12.9+)
   * instead of the own epilogue kernel, where cuBLASLt has an algorithm for them (PAGODA_FP8_CUBLASLT_SCALES=0: always
   * the epilogue). With fast accumulation, 1.9 % more offline throughput on an H100 (without it, none).
   */
  fp8CublasltScales: boolean;
  /**
   * cuBLASLt's FP8 GEMMs sum in the tensor cores' accumulators all along K (its FAST_ACCUM mode, as vLLM's FP8 GEMMs
   * do) instead of promoting to float32 every few k-blocks (PAGODA_FP8_FAST_ACCUM=0): on an H100, 2.2 % more offline
   * throughput with FP8 weights and cache, the error at 0.3-0.5 of the GEMM test's bound.
   */
  fp8FastAccum: boolean;
  /**
   * The GEMV FP8 weights' decode rows take (PAGODA_FP8_GEMV=tensor-cores|cuda-cores): 'tensor-cores' (the default until
   * the device measures the other) mma.sync e4m3 over x quantized per token; 'cuda-cores' gemv.cu's FP8 build over
   * 16-bit x as it is (W8A16), whose producers then write no e4m3 copy of x for it.
   */
  fp8GemvRoute: Fp8GemvChoice;
  /** Attention always through the simple kernel (PAGODA_SIMPLE_ATTENTION=1, `serve --flash-attention 0`). */
  simpleAttention: boolean;
  /**
   * The prefill attention kernel (PAGODA_PREFILL_KERNEL=mma|wgmma): 'wgmma' (the default: 1.4x the mma.sync kernel at
   * head size 128 and 3x at 256 on an H100) runs the sm_90a kernel on compute capability 9.0 wherever it covers the
   * call; 'mma' always the mma.sync kernel.
   */
  prefillKernel: PrefillKernel;
  /**
   * The quantized linear past the decode GEMV's rows (PAGODA_QUANT_GEMM=fused|dequantize): 'fused' (the default)
   * decodes the blocks on tensor cores where kernels/quant_gemm.cu covers the type; 'dequantize' always writes the
   * weight in 16 bits for cuBLASLt.
   */
  quantGemm: QuantGemmRoute;
  /** Where compiled kernels are cached (PAGODA_KERNEL_CACHE, else $XDG_CACHE_HOME/pagoda/kernels). */
  kernelCache: string;
  /**
   * One tensor-parallel rank through the NCCL path instead of the plain one (PAGODA_TP_FORCE_NCCL=1): the one-GPU
   * check that the sharded forward and its collectives change no logit.
   */
  tpForceNccl: boolean;
  /** Decode steps captured as CUDA graphs per batch-size bucket and replayed (`--enforce-eager`: every step op by op). */
  graphs: boolean;
  /** CUDA toolkit folders searched for libraries and headers before the usual ones ($CUDA_HOME, $CUDA_PATH). */
  cudaRoots: readonly string[];
}

export const DEFAULT_CUDA_SETTINGS: Readonly<CudaSettings> = {
  device: 0,
  pdl: true,
  gemv: true,
  fp8CublasltScales: true,
  fp8FastAccum: true,
  fp8GemvRoute: 'auto',
  simpleAttention: false,
  prefillKernel: 'wgmma',
  quantGemm: 'fused',
  kernelCache: join(homedir(), '.cache', 'pagoda', 'kernels'),
  tpForceNccl: false,
  graphs: true,
  cudaRoots: [],
};

/** The defaults with every setting `given` (undefined ones left at their default). */
export function cudaSettings(given: Partial<CudaSettings> = {}): CudaSettings {
  const d = DEFAULT_CUDA_SETTINGS;
  return {
    device: given.device ?? d.device,
    pdl: given.pdl ?? d.pdl,
    gemv: given.gemv ?? d.gemv,
    fp8CublasltScales: given.fp8CublasltScales ?? d.fp8CublasltScales,
    fp8FastAccum: given.fp8FastAccum ?? d.fp8FastAccum,
    fp8GemvRoute: given.fp8GemvRoute ?? d.fp8GemvRoute,
    simpleAttention: given.simpleAttention ?? d.simpleAttention,
    prefillKernel: given.prefillKernel ?? d.prefillKernel,
    quantGemm: given.quantGemm ?? d.quantGemm,
    kernelCache: given.kernelCache ?? d.kernelCache,
    tpForceNccl: given.tpForceNccl ?? d.tpForceNccl,
    graphs: given.graphs ?? d.graphs,
    cudaRoots: given.cudaRoots ?? d.cudaRoots,
  };
}
