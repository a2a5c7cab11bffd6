import { join } from 'node:path';
import { PREFILL_KERNELS, type PrefillKernel } from '../backend/cuda/flash-prefill-sm90a.ts';
import { FP8_GEMV_CHOICES, type Fp8GemvChoice } from '../backend/cuda/fp8-gemv.ts';
import { QUANT_GEMM_ROUTES, type QuantGemmRoute } from '../backend/cuda/quant-gemm.ts';
import type { CudaSettings } from '../backend/cuda/settings.ts';
import { UserError } from '../util/errors.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** The engine settings the environment holds; a command's flags override them (engine-options.ts). */
export interface EnvSettings {
  /** PAGODA_DEVICE: auto, cuda or cpu (checked where it is used, like --device). */
  device?: string;
  cuda: Partial<CudaSettings>;
  /** PAGODA_CPU_THREADS: worker threads of the CPU backend (a positive integer; anything else is ignored). */
  cpuThreads?: number;
  /** PAGODA_TENSOR_PARALLEL_SIZE as written (checked with --tensor-parallel-size). */
  tensorParallelSize?: string;
  /** PAGODA_GRAMMAR_WORKERS as written (checked with --grammar-workers). */
  grammarWorkers?: string;
  /** PAGODA_MAX_LOGPROBS as written (checked with --max-logprobs). */
  maxLogprobs?: string;
  /** PAGODA_QUANTIZATION: like --quantization (checked where it is used). */
  quantization?: string;
  /** PAGODA_KV_CACHE_TYPE as written (checked with --kv-cache-type). */
  kvCacheType?: string;
  /** PAGODA_LORA: like --lora (a PEFT LoRA adapter folder). */
  lora?: string;
  /** PAGODA_CHAT_TEMPLATE: like --chat-template (a Jinja file or the template's text). */
  chatTemplate?: string;
  /** PAGODA_RUNNER_THREAD: 1 or 0 (--runner-thread / --no-runner-thread). */
  runnerThread?: boolean;
  /** PAGODA_ASYNC_SCHEDULING=0: as --no-async-scheduling. */
  asyncScheduling?: boolean;
  /** PAGODA_KV_COMPRESSION and PAGODA_KV_BUDGET as written (checked with the flags they stand for). */
  kvCompression?: string;
  kvBudget?: string;
  /** PAGODA_SPECULATIVE*, as given (checked with the flags they stand for, in engine-options.ts); absent when none is set. */
  speculative?: SpeculativeEnv;
}

/** The speculative decoding variables: `ngram` or a draft model, K, and the n-gram lengths. */
export interface SpeculativeEnv {
  method?: string;
  numTokens?: string;
  ngramMin?: string;
  ngramMax?: string;
}

/**
 * Reads every backend setting from the environment, once at start-up, so nothing below the CLI looks at it:
 * PAGODA_DEVICE, PAGODA_CPU_THREADS, PAGODA_RUNNER_THREAD, PAGODA_ASYNC_SCHEDULING=0, PAGODA_TENSOR_PARALLEL_SIZE, PAGODA_GRAMMAR_WORKERS, PAGODA_MAX_LOGPROBS, PAGODA_QUANTIZATION, PAGODA_KV_CACHE_TYPE, PAGODA_KV_COMPRESSION, PAGODA_KV_BUDGET, PAGODA_CUDA_DEVICE, PAGODA_PDL=0, PAGODA_GEMV=0, PAGODA_FP8_CUBLASLT_SCALES=0, PAGODA_FP8_FAST_ACCUM=0, PAGODA_FP8_GEMV (auto, tensor-cores or cuda-cores), PAGODA_SIMPLE_ATTENTION=1,
 * PAGODA_TP_FORCE_NCCL=1, PAGODA_PREFILL_KERNEL (mma or wgmma), PAGODA_QUANT_GEMM (fused or dequantize), PAGODA_KERNEL_CACHE (else $XDG_CACHE_HOME/pagoda/kernels), the CUDA toolkit roots $CUDA_HOME and $CUDA_PATH, and
 * speculative decoding's PAGODA_SPECULATIVE, PAGODA_NUM_SPECULATIVE_TOKENS, PAGODA_SPECULATIVE_NGRAM_MIN and _MAX.
 */
export function settingsFromEnv(env: Env = process.env): EnvSettings {
  const cuda: Partial<CudaSettings> = {};
  const device = env.PAGODA_CUDA_DEVICE;
  if (device) {
    if (!/^\d+$/.test(device.trim())) throw new UserError(`PAGODA_CUDA_DEVICE ${device}: expected a device number`);
    cuda.device = Number(device);
  }
  if (env.PAGODA_PDL !== undefined) cuda.pdl = env.PAGODA_PDL !== '0';
  if (env.PAGODA_GEMV !== undefined) cuda.gemv = env.PAGODA_GEMV !== '0';
  if (env.PAGODA_FP8_CUBLASLT_SCALES !== undefined) cuda.fp8CublasltScales = env.PAGODA_FP8_CUBLASLT_SCALES !== '0';
  if (env.PAGODA_FP8_FAST_ACCUM !== undefined) cuda.fp8FastAccum = env.PAGODA_FP8_FAST_ACCUM !== '0';
  if (env.PAGODA_SIMPLE_ATTENTION !== undefined) cuda.simpleAttention = env.PAGODA_SIMPLE_ATTENTION === '1';
  if (env.PAGODA_TP_FORCE_NCCL !== undefined) cuda.tpForceNccl = env.PAGODA_TP_FORCE_NCCL === '1';
  const fp8Gemv = env.PAGODA_FP8_GEMV;
  if (fp8Gemv) {
    if (!(FP8_GEMV_CHOICES as readonly string[]).includes(fp8Gemv))
      throw new UserError(`PAGODA_FP8_GEMV ${fp8Gemv}: expected ${FP8_GEMV_CHOICES.join(', ')}`);
    cuda.fp8GemvRoute = fp8Gemv as Fp8GemvChoice;
  }
  const prefill = env.PAGODA_PREFILL_KERNEL;
  if (prefill) {
    if (!(PREFILL_KERNELS as readonly string[]).includes(prefill))
      throw new UserError(`PAGODA_PREFILL_KERNEL ${prefill}: expected ${PREFILL_KERNELS.join(' or ')}`);
    cuda.prefillKernel = prefill as PrefillKernel;
  }
  const quantGemm = env.PAGODA_QUANT_GEMM;
  if (quantGemm) {
    if (!(QUANT_GEMM_ROUTES as readonly string[]).includes(quantGemm))
      throw new UserError(`PAGODA_QUANT_GEMM ${quantGemm}: expected ${QUANT_GEMM_ROUTES.join(' or ')}`);
    cuda.quantGemm = quantGemm as QuantGemmRoute;
  }
  if (env.PAGODA_KERNEL_CACHE) cuda.kernelCache = env.PAGODA_KERNEL_CACHE;
  else if (env.XDG_CACHE_HOME) cuda.kernelCache = join(env.XDG_CACHE_HOME, 'pagoda', 'kernels');
  const roots = [env.CUDA_HOME, env.CUDA_PATH].filter((r): r is string => !!r);
  if (roots.length) cuda.cudaRoots = roots;
  const runnerThread = env.PAGODA_RUNNER_THREAD || undefined;
  if (runnerThread !== undefined && runnerThread !== '0' && runnerThread !== '1')
    throw new UserError(`PAGODA_RUNNER_THREAD ${runnerThread}: expected 1 or 0`);
  const threads = Number(env.PAGODA_CPU_THREADS);
  const settings: EnvSettings = {
    device: env.PAGODA_DEVICE,
    cuda,
    cpuThreads: Number.isInteger(threads) && threads > 0 ? threads : undefined,
    ...(runnerThread !== undefined && { runnerThread: runnerThread === '1' }),
    ...(env.PAGODA_ASYNC_SCHEDULING === '0' && { asyncScheduling: false }),
    ...(env.PAGODA_TENSOR_PARALLEL_SIZE && { tensorParallelSize: env.PAGODA_TENSOR_PARALLEL_SIZE }),
    ...(env.PAGODA_GRAMMAR_WORKERS && { grammarWorkers: env.PAGODA_GRAMMAR_WORKERS }),
    ...(env.PAGODA_MAX_LOGPROBS && { maxLogprobs: env.PAGODA_MAX_LOGPROBS }),
    ...(env.PAGODA_QUANTIZATION && { quantization: env.PAGODA_QUANTIZATION }),
    ...(env.PAGODA_KV_CACHE_TYPE && { kvCacheType: env.PAGODA_KV_CACHE_TYPE }),
    ...(env.PAGODA_LORA && { lora: env.PAGODA_LORA }),
    ...(env.PAGODA_CHAT_TEMPLATE && { chatTemplate: env.PAGODA_CHAT_TEMPLATE }),
    ...(env.PAGODA_KV_COMPRESSION && { kvCompression: env.PAGODA_KV_COMPRESSION }),
    ...(env.PAGODA_KV_BUDGET && { kvBudget: env.PAGODA_KV_BUDGET }),
  };
  const speculative: SpeculativeEnv = {
    method: env.PAGODA_SPECULATIVE,
    numTokens: env.PAGODA_NUM_SPECULATIVE_TOKENS,
    ngramMin: env.PAGODA_SPECULATIVE_NGRAM_MIN,
    ngramMax: env.PAGODA_SPECULATIVE_NGRAM_MAX,
  };
  if (Object.values(speculative).some((v) => v !== undefined)) settings.speculative = speculative;
  return settings;
}
