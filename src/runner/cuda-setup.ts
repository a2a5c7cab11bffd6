import { join } from 'node:path';
import { CudaBackend } from '../backend/cuda/backend.ts';
import type { CompilePool } from '../backend/cuda/compile-pool.ts';
import { cudaDtype, probeCuda } from '../backend/cuda/device.ts';
import { prefetchKernels } from '../backend/cuda/kernel-prefetch.ts';
import { isCudaKvQuant } from '../backend/cuda/kv-layout.ts';
import { CudaUnavailable } from '../backend/cuda/libs.ts';
import type { CudaSettings } from '../backend/cuda/settings.ts';
import type { UploadStats } from '../backend/cuda/weight-upload.ts';
import { releasingOnError } from '../backend/release-on-error.ts';
import { loadModelConfig } from '../loader/hf-config.ts';
import { loadDummyModel } from '../models/dummy.ts';
import { loadModel } from '../models/load.ts';
import type { Model } from '../models/model.ts';
import { type LoadedPoolingModel, loadPoolingModel, poolingStack } from '../models/pooling-load.ts';
import { pickArchitecture } from '../models/registry.ts';
import type { KvQuant } from '../primitives/kv-cache-type.ts';
import { FP8_QUANTIZATION, type QuantScheme } from '../primitives/quant/mix.ts';
import { UserError } from '../util/errors.ts';
import { kernelPlanModel } from './kernel-plan-model.ts';
import { profileKvBlocks } from './kv-sizing.ts';
import { cudaStartupParts } from './startup-report.ts';
import { cudaThroughNccl, ncclBackend } from './tensor-parallel.ts';
import { deviceWeights } from './weight-bytes.ts';

export interface CudaModelOptions {
  /** --dtype: auto | bfloat16 | float16 | float32. */
  dtype?: string;
  /** --load-format dummy: random weights made on the device from config.json alone. */
  dummy?: boolean;
  gpuMemoryUtilization?: number;
  /** Explicit KV cache bytes; otherwise sized by profiling. */
  kvCacheMemory?: number;
  /** The cache's quantized storage (runner/kv-cache-choice.ts); absent: the compute dtype. */
  kvQuant?: KvQuant;
  blockSize: number;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  maxModelLen: number;
  log: (line: string) => void;
  /** A terminal's status line: loading progress while weights upload, null to clear it. */
  progress?: (line: string | null) => void;
  cuda?: Partial<CudaSettings>;
  /** --quantization fp8, as spelled (FP8 weights); GGUF block schemes come as `quantScheme`. */
  quantization?: string;
  /** --quantization q4_k_m, q8_0, ...: the matrices as that scheme's blocks (dummy blocks made on the device). */
  quantScheme?: QuantScheme;
  /** A PEFT LoRA adapter folder merged into the weights as they load. */
  lora?: string;
  /** Host threads a LoRA merge may use (the machine's parallelism up to 8 when absent). */
  cpuThreads?: number;
}

/** The one line refusing `--quantization fp8` where FP8 weights cannot run, and `why`. */
export function fp8Refusal(spelling: string, why: string): string {
  return `--quantization ${spelling}: FP8 weights need a GPU of compute capability 8.9 or newer (Ada, Hopper), ${why}; run the checkpoint's own dtype`;
}

/** Loading progress for a status line, at most four times a second: `weights 5.21 / 16.06 GB, 5.4 GB/s`. */
export function progressLine(
  total: number,
  show: ((line: string) => void) | undefined,
  now: () => number = () => performance.now(),
): ((bytes: number) => void) | undefined {
  if (!show) return undefined;
  const t0 = now();
  let last = t0;
  return (bytes) => {
    const t = now();
    if (t - last < 250) return;
    last = t;
    const rate = bytes / 1e9 / ((t - t0) / 1000);
    show(`weights ${(bytes / 1e9).toFixed(2)} / ${(total / 1e9).toFixed(2)} GB, ${rate.toFixed(1)} GB/s`);
  };
}

/** What loading the weights took, for the start-up line. */
interface Loaded<M> {
  model: M;
  backend: CudaBackend;
  pool: CompilePool;
  weights: { upload: UploadStats; ms: number };
  hiddenMs: number;
}

/**
 * The CUDA backend for the model in `dir`, after checking the device, with `build`'s weights in one allocation; the
 * kernels the model will need compile in worker threads meanwhile.
 */
function loadOnCuda<M>(
  dir: string,
  o: Pick<
    CudaModelOptions,
    'dtype' | 'dummy' | 'log' | 'progress' | 'cuda' | 'maxNumSeqs' | 'maxNumBatchedTokens' | 'quantScheme' | 'kvQuant'
  >,
  pooling: boolean,
  build: (backend: CudaBackend) => M,
  fp8 = false,
): Loaded<M> {
  const config = loadModelConfig(dir);
  const dtype = cudaDtype(config.dtype, o.dtype ?? 'auto');
  const {
    bytes,
    blockTypes,
    fp8: fp8Stored,
    expertScratchBytes,
  } = deviceWeights(dir, {
    dtype,
    dummy: o.dummy,
    pooling,
    fp8,
    quantization: o.quantScheme,
  });
  const probe = probeCuda({ weightBytes: bytes, scratchBytes: expertScratchBytes, cuda: o.cuda });
  if (probe instanceof CudaUnavailable) throw new UserError(`--device cuda: ${probe.reason}. ${probe.fix}`);
  const t0 = performance.now();
  const backend = new CudaBackend({
    ...o.cuda,
    dtype,
    weightBytes: bytes,
    loadProgress: progressLine(bytes, o.progress),
  });
  // Anything failing from here on frees the backend and stops the compile workers.
  const { pool, loadStart, model, upload } = releasingOnError(
    () => [backend],
    () => {
      // A pooling step's rows are its tokens: the smallest steps are GEMV-sized too.
      const decoder = pooling ? undefined : pickArchitecture(config, join(dir, 'config.json'));
      const plan = kernelPlanModel(config, pooling ? o.maxNumBatchedTokens : o.maxNumSeqs, {
        quantTypes: blockTypes,
        fp8: fp8Stored && backend.fp8Weights,
        kvQuant: isCudaKvQuant(o.kvQuant) ? o.kvQuant : undefined,
        moe: decoder?.moe,
        shape: decoder?.kernelShape,
        pooling: pooling ? poolingStack(config) : undefined,
      });
      const pool = prefetchKernels(backend, plan);
      try {
        const loadStart = performance.now();
        const model = build(backend);
        return { pool, loadStart, model, upload: backend.finishLoading() };
      } catch (e) {
        pool.close();
        throw e;
      }
    },
  );
  o.progress?.(null);
  const loadEnd = performance.now();
  pool.poll();
  o.log(
    `weights: ${(bytes / 2 ** 30).toFixed(2)} GiB ${dtype}${o.dummy ? ' (dummy)' : ''} loaded in ${((loadEnd - t0) / 1000).toFixed(1)} s`,
  );
  return {
    model,
    backend,
    pool,
    weights: { upload, ms: loadEnd - loadStart },
    hiddenMs: pool.busyWithin(loadStart, loadEnd),
  };
}

/** The CUDA part of the start-up line, as of now (decode kernels may still be compiling: the first decode takes them). */
function startupReport(l: Loaded<unknown>, kvMs: number | null): () => string {
  return () => {
    l.pool.poll();
    const nvrtc = l.backend.ctx.mods.nvrtc.stats;
    return cudaStartupParts({
      weights: l.weights,
      prefetch: l.pool.stats,
      hiddenMs: l.hiddenMs,
      firstUse: { compiled: nvrtc.compiled, cached: nvrtc.cached, compileMs: nvrtc.compileMs },
      kvMs,
      graphs: l.backend.graphs !== null,
    });
  };
}

/**
 * Loads a model onto the GPU for the engine: weights in one allocation (streamed from safetensors, or dummy), then
 * the KV cache block count from a profiling pass of the largest step and --gpu-memory-utilization. `backend` is the
 * device's; the model's may be a one-rank ParallelBackend over it (PAGODA_TP_FORCE_NCCL=1), whose release frees both.
 */
export function loadCudaModel(
  dir: string,
  o: CudaModelOptions,
): { model: Model; backend: CudaBackend; numBlocks: number; startup: () => string } {
  const util = o.gpuMemoryUtilization ?? 0.9;
  if (!(util > 0 && util <= 1)) throw new UserError(`--gpu-memory-utilization ${util}: expected a fraction in (0, 1]`);
  const fp8 = o.quantization !== undefined;
  const loaded = loadOnCuda(
    dir,
    o,
    false,
    (b) => {
      if (fp8 && !b.fp8Weights) {
        const { name, ccMajor, ccMinor } = b.ctx.drv.info;
        throw new UserError(fp8Refusal(o.quantization!, `and ${name} is ${ccMajor}.${ccMinor}`));
      }
      const build = { maxModelLen: o.maxModelLen, quantization: fp8 ? FP8_QUANTIZATION : o.quantScheme };
      // The model's backend: the device's, or its one rank of the NCCL path (runner/tensor-parallel.ts).
      const target = cudaThroughNccl(1, o.cuda) ? ncclBackend([b], o.log) : b;
      const model = releasingOnError(
        () => (target === b ? [] : [target]),
        () =>
          o.dummy
            ? loadDummyModel(dir, target, build)
            : loadModel(dir, target, { ...build, lora: o.lora, log: o.log, cpuThreads: o.cpuThreads }),
      );
      b.releaseLoadStaging();
      return model;
    },
    fp8,
  );
  if (fp8)
    o.log(
      `weights: decoder matrices quantized to FP8 e4m3 per output row at load${o.dummy ? ' (random, on the device)' : ''}`,
    );
  const { model, backend } = loaded;
  const kvStart = performance.now();
  const numBlocks = releasingOnError(
    () => [model.backend],
    () => {
      if (o.kvCacheMemory === undefined) {
        const sizing = profileKvBlocks(backend, model, { ...o, gpuMemoryUtilization: util });
        o.log(sizing.report);
        return sizing.numBlocks;
      }
      backend.reserveSteps({
        tokens: Math.max(o.maxNumBatchedTokens, o.maxNumSeqs),
        seqs: o.maxNumSeqs,
        blocksPerSeq: Math.ceil(o.maxModelLen / o.blockSize),
      });
      backend.graphs?.setMaxBatch(o.maxNumSeqs);
      const blockBytes = backend.kvBlockBytes({ ...model.kvShape, blockSize: o.blockSize, quant: o.kvQuant });
      return Math.floor(o.kvCacheMemory / blockBytes);
    },
  );
  const startup = startupReport(loaded, o.kvCacheMemory === undefined ? performance.now() - kvStart : null);
  return { model, backend, numBlocks, startup };
}

/**
 * Loads an embedding or reranking model onto the GPU: weights in one allocation, step buffers for the largest step
 * (no KV cache: its sequences run whole with no cache).
 */
export function loadCudaPoolingModel(
  dir: string,
  o: {
    dtype?: string;
    dummy?: boolean;
    maxNumBatchedTokens: number;
    maxNumSeqs: number;
    log: (line: string) => void;
    progress?: (line: string | null) => void;
    cuda?: Partial<CudaSettings>;
  },
): { loaded: LoadedPoolingModel; backend: CudaBackend; startup: () => string } {
  const loaded = loadOnCuda(dir, o, true, (b) => loadPoolingModel(dir, b, { dummy: o.dummy }));
  const { model, backend } = loaded;
  releasingOnError(
    () => [backend],
    () => backend.reserveSteps({ tokens: o.maxNumBatchedTokens, seqs: o.maxNumSeqs, blocksPerSeq: 1 }),
  );
  return { loaded: model, backend, startup: startupReport(loaded, null) };
}
