import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Backend } from '../backend/backend.ts';
import { CudaBackend } from '../backend/cuda/backend.ts';
import { selectDevice } from '../backend/cuda/device.ts';
import type { CudaSettings } from '../backend/cuda/settings.ts';
import { releasingOnError } from '../backend/release-on-error.ts';
import type { GrammarVocabulary } from '../grammar/vocabulary.ts';
import type { TokenizerWorkerOptions } from '../loader/background-tokenizer.ts';
import { chatTemplateFrom, chatTemplateOption, loadChatTemplate, type TemplateText } from '../loader/chat-template.ts';
import { DEMO_MODEL_NAME, ensureDemoModel } from '../loader/demo-model.ts';
import { isGgufPath } from '../loader/gguf/files.ts';
import { type GenerationConfig, loadGenerationConfig, loadModelConfig, type ModelConfig } from '../loader/hf-config.ts';
import { checkpointKvScales } from '../loader/kv-scales.ts';
import { modelTask } from '../loader/model-task.ts';
import { loadTokenizer, type TextTokenizer } from '../loader/tokenizer.ts';
import { dummyTokenizer, loadDummyModel } from '../models/dummy.ts';
import { loadModel } from '../models/load.ts';
import type { Model } from '../models/model.ts';
import { longRopeChoice } from '../models/rope.ts';
import { type KvCacheType, type KvQuant, kvHeadMismatch } from '../primitives/kv-cache-type.ts';
import type { KvCompressionConfig } from '../primitives/kv-compression.ts';
import { isFp8, type LoadQuantization, parseLoadQuantization } from '../primitives/quant/mix.ts';
import type { Manifest } from '../store/manifest.ts';
import { type PromptTemplate, storedChatTemplate } from '../store/model-prompt.ts';
import { adapterPath, resolveModel } from '../store/resolve.ts';
import { UserError } from '../util/errors.ts';
import { fp8Refusal, loadCudaModel } from './cuda-setup.ts';
import { cpuKvBlocks, kvBytesPerValue, kvCacheDtype, kvCacheQuant } from './kv-cache-choice.ts';
import { kvBlockBytes, ModelRunner } from './model-runner.ts';
import { checkTensorParallelLoad, cpuBackend } from './tensor-parallel.ts';

/** Engine settings as plain values, so the CLI (flags) and the server (flags, env) fill them the same way. */
export interface EngineOptions {
  /** Bytes for the KV cache (K and V of every layer). Default: 256 MiB on the CPU, capped at what is useful. */
  kvCacheMemory?: number;
  /** Tokens per KV block (default 16). */
  blockSize?: number;
  /** Token budget of one step (default 256 on the CPU). */
  maxNumBatchedTokens?: number;
  /** Sequences per step (default 64 on the CPU). */
  maxNumSeqs?: number;
  /** Longest prompt + output (default and maximum: the model's max_position_embeddings). */
  maxModelLen?: number;
  /** Automatic prefix caching (default on). */
  enablePrefixCaching?: boolean;
  /** --no-async-scheduling / PAGODA_ASYNC_SCHEDULING=0 turn it off (EngineConfig.asyncScheduling). */
  asyncScheduling?: boolean;
  /** --max-logprobs: most logprobs a request may ask for (EngineConfig.maxLogprobs). */
  maxLogprobs?: number;
  /** --seed: where the seeds of requests that give none are drawn from (EngineConfig.seed). */
  seed?: number;
  /**
   * --generation-config: 'auto' (the default) takes sampling defaults from the model's generation_config.json,
   * 'vllm' takes none, a folder takes them from its generation_config.json.
   */
  generationConfig?: string;
  schedulingPolicy?: 'fcfs' | 'priority';
  /** KV cache compression of long prompts (--kv-compression, --kv-budget); absent: none. */
  kvCompression?: KvCompressionConfig;
  /** A backend to use as is; otherwise `device` picks one. */
  backend?: Backend;
  /** --device: auto (CUDA when usable, else the CPU), cuda or cpu (default auto; the CLI reads $PAGODA_DEVICE). */
  device?: string;
  /** The CUDA backend's settings (device ordinal, PDL, GEMV, attention kernels, kernel cache, library roots). */
  cuda?: Partial<CudaSettings>;
  /**
   * --tensor-parallel-size: ranks the model's weights are split over (default 1); on the CPU the ranks are simulated
   * in one process.
   */
  tensorParallelSize?: number;
  /** Worker threads of the CPU backend (default: the machine's parallelism up to 8). */
  cpuThreads?: number;
  /** --dtype for the GPU: auto (bf16/fp16 as stored, fp32 -> bf16), bfloat16, float16 or float32. */
  dtype?: string;
  /** Fraction of GPU memory pagoda may use (default 0.9); the KV cache gets what the weights and activations leave. */
  gpuMemoryUtilization?: number;
  /** 'dummy': random weights made from config.json alone (benchmarks). */
  loadFormat?: 'auto' | 'dummy';
  /**
   * --quantization: a 16/32-bit checkpoint's matrices quantized at load to a GGUF type or llama.cpp mix (q8_0,
   * q4_k_m, …); with dummy weights, random blocks of that type. CPU only for now.
   */
  quantization?: string;
  /** --lora: a PEFT LoRA adapter folder, merged into the weights as they load (a stored model's ADAPTER otherwise). */
  lora?: string;
  /**
   * --chat-template: a Jinja file or template text that replaces the model's own (and a Modelfile's TEMPLATE), or
   * that text as read already.
   */
  chatTemplate?: string | TemplateText;
  /**
   * --kv-cache-type: auto, a float type (on the GPU it picks --dtype; the CPU stores f32) or a quantized type the
   * CPU backend stores as such (fp8, q8_0, q4_0; see primitives/kv-cache-type.ts).
   */
  kvCacheType?: KvCacheType;
  /** Start-up lines (KV cache size); default: stderr. */
  log?: (line: string) => void;
  /** A terminal's status line (weight loading progress on the GPU), null to clear it; default: none. */
  progress?: (line: string | null) => void;
  /** Which texts the tokenizer worker encodes, and its entry (tests hold the worker on a latch). */
  /**
   * The vocabulary structured output masks over, when it is not the model folder's tokenizer.json (benchmarks on
   * dummy weights use a fixture vocabulary, padded to the model's width).
   */
  grammarVocabulary?: GrammarVocabulary;
  /** --grammar-workers: threads computing structured output's masks (default: from the host's cores). */
  grammarWorkers?: number;
  tokenizerWorker?: TokenizerWorkerOptions;
  /**
   * --runner-thread / PAGODA_RUNNER_THREAD: an embedding or reranking model's weights, backend and step launches in a
   * worker thread of their own, apart from the thread that serves HTTP (default: on for CUDA, whose launches are host
   * work; off for the CPU, which computes on its own thread pool). Not with a `backend` passed in.
   */
  runnerThread?: boolean;
  /** Speculative decoding; absent: off. */
  speculative?: SpeculativeOptions;
}

/** --speculative and its companions, checked. */
export interface SpeculativeOptions {
  /** 'ngram' (prompt lookup) or a draft model: a folder, store name or cache repo with the target's vocabulary. */
  proposer: string;
  /** Draft tokens per sequence and step (K). */
  numTokens: number;
  /** The n-gram lengths prompt lookup tries, longest first. */
  ngramMin: number;
  ngramMax: number;
}

/** A model ready to run: weights on its backend, its KV cache, and what the engine above it needs to know. */
export interface PreparedModel {
  runner: ModelRunner;
  numBlocks: number;
  /** Bytes the KV cache takes in all (every layer's K and V, on every tensor-parallel rank). */
  kvCacheBytes: number;
  blockSize: number;
  maxModelLen: number;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  modelDir: string;
  /** What clients see as the model's name. */
  modelName: string;
  isDemo: boolean;
  backend: Backend['name'];
  /** The GPU's name on CUDA, else 'CPU' (benchmark headings). */
  deviceName: string;
  config: ModelConfig;
  generation: GenerationConfig;
  tokenizer: TextTokenizer;
  /** The model's Jinja template, or a stored model's Go TEMPLATE with its SYSTEM and MESSAGEs. */
  chatTemplate: PromptTemplate | null;
  /** A stored model's manifest (Modelfile parameters, system prompt, template); null for folders and cache repos. */
  manifest: Manifest | null;
}

/**
 * True when `arg` names a model rather than being a prompt: the demo model, a folder, a GGUF file, or a stored or
 * cached name.
 */
export function isModelReference(arg: string): boolean {
  if (arg === DEMO_MODEL_NAME || (existsSync(arg) && statSync(arg).isDirectory()) || isGgufPath(arg)) return true;
  try {
    resolveModel(arg);
    return true;
  } catch {
    return false;
  }
}

/** The LoRA adapter folder to merge: --lora, or a stored model's ADAPTER; both, or either with dummy weights, refused. */
function loraFolder(manifest: Manifest | null, flag: string | undefined, dummy: boolean): string | undefined {
  const stored = manifest?.adapter ? adapterPath(manifest.adapter, process.env) : undefined;
  if (flag && stored)
    throw new UserError(`--lora ${flag}: the model already has an adapter (${stored}); one at a time`);
  const lora = flag ?? stored;
  if (lora && dummy) throw new UserError(`--lora ${lora}: an adapter needs real weights, not --load-format dummy`);
  return lora;
}

/**
 * Loads everything one model needs: config, generation config, tokenizer, chat template, weights on the backend,
 * KV cache sized from `kvCacheMemory`. `model` is a folder or the demo model (name or none).
 */
export function prepareModel(model: string | undefined, options: EngineOptions = {}): PreparedModel {
  const isDemo = model === undefined || model === DEMO_MODEL_NAME;
  // A store name, a Hugging Face cache repo or a folder (see store/resolve.ts).
  const resolved = isDemo ? null : resolveModel(model, { allowPaths: true });
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const modelDir = resolved ? resolved.path : ensureDemoModel(log);
  const manifest = resolved?.manifest ?? null;
  const config0 = loadModelConfig(modelDir);
  const task = modelTask(modelDir, config0);
  if (task !== 'generate') {
    const [what, use] =
      task === 'score' ? ['a reranking', '/v1/rerank'] : ['an embedding', '/v1/embeddings or /api/embed'];
    throw new UserError(`${model}: ${what} model does not generate text (serve it and use ${use})`);
  }
  const device = chooseDevice(options, log);
  const dummy = options.loadFormat === 'dummy';
  const lora = loraFolder(manifest, options.lora, dummy);
  // --chat-template read before the weights load: a bad one fails first.
  const template =
    typeof options.chatTemplate === 'string' ? chatTemplateOption(options.chatTemplate) : options.chatTemplate;
  const onCpu = device === 'cpu';
  const quantization = options.quantization
    ? weightQuantization(options.quantization, onCpu, options.backend)
    : undefined;
  const ranks = positiveInt(options.tensorParallelSize ?? 1, '--tensor-parallel-size');
  const { cuda, kvCompression } = options;
  if (!options.backend)
    checkTensorParallelLoad(ranks, { device, cuda, quantization: options.quantization, kvCompression });
  // Each rank caches its own share of the KV heads (one, replicated, when there are fewer KV heads than ranks).
  const rankKvHeads = Math.max(1, config0.numKvHeads / ranks);
  const kvQuant = kvCacheQuant(options.kvCacheType, device, { ...config0, numKvHeads: rankKvHeads }, log);
  const blockSize = positiveInt(options.blockSize ?? 16, '--block-size');
  const numCtx = typeof manifest?.parameters.num_ctx === 'number' ? manifest.parameters.num_ctx : undefined;
  const maxModelLen = positiveInt(
    options.maxModelLen ?? Math.min(numCtx ?? Number.POSITIVE_INFINITY, config0.maxPositionEmbeddings),
    options.maxModelLen === undefined ? 'max model length' : '--max-model-len',
  );
  if (maxModelLen > config0.maxPositionEmbeddings) {
    throw new UserError(
      `--max-model-len ${maxModelLen}: exceeds the model's max_position_embeddings (${config0.maxPositionEmbeddings})`,
    );
  }
  const longRope = longRopeChoice(config0, maxModelLen);
  if (longRope) {
    const why = longRope.factors === 'long' ? 'exceeds' : 'is within';
    log(
      `LongRoPE: ${longRope.factors} factors (max model len ${maxModelLen} ${why} original_max_position_embeddings ${longRope.originalMax})`,
    );
  }
  const maxNumSeqs = positiveInt(options.maxNumSeqs ?? (onCpu ? 64 : 256), '--max-num-seqs');
  const maxNumBatchedTokens = positiveInt(
    options.maxNumBatchedTokens ?? (onCpu ? 256 : 8192),
    '--max-num-batched-tokens',
  );
  let m: Model;
  let made: Backend | undefined;
  /** The CUDA device's backend (the model's own, or its one rank through NCCL), for the memory report and its name. */
  let gpu = options.backend instanceof CudaBackend ? options.backend : undefined;
  let numBlocks: number;
  let kvCacheBytes: number;
  let cudaStartup: (() => string) | null = null;
  const t0 = performance.now();
  // A backend made here (`made`) is freed if anything after it fails; one the caller passed in stays theirs.
  return releasingOnError(
    () => (made ? [made] : []),
    (): PreparedModel => {
      if (device === 'cuda' && !options.backend) {
        const cuda = loadCudaModel(modelDir, {
          dtype: kvCacheDtype(options.kvCacheType, options.dtype),
          dummy,
          gpuMemoryUtilization: options.gpuMemoryUtilization,
          kvCacheMemory: options.kvCacheMemory,
          kvQuant,
          blockSize,
          maxNumBatchedTokens,
          maxNumSeqs,
          maxModelLen,
          log,
          progress: options.progress,
          cuda: options.cuda,
          // The spelling of fp8, which CUDA keeps as FP8; GGUF block schemes as parsed.
          quantization: quantization && isFp8(quantization) ? options.quantization : undefined,
          quantScheme: quantization && !isFp8(quantization) ? quantization : undefined,
          lora,
          cpuThreads: options.cpuThreads,
        });
        // The model's backend is the one to free: a ParallelBackend over the device's frees it and NCCL's state.
        [m, made, gpu] = [cuda.model, cuda.model.backend, cuda.backend];
        numBlocks = cuda.numBlocks;
        cudaStartup = cuda.startup;
        kvCacheBytes = numBlocks * cuda.backend.kvBlockBytes({ ...m.kvShape, blockSize, quant: kvQuant });
      } else {
        const backend = options.backend ?? (made = cpuBackend(ranks, options.cpuThreads));
        const build = { maxModelLen, quantization };
        m = dummy
          ? loadDummyModel(modelDir, backend, build)
          : loadModel(modelDir, backend, { ...build, lora, log, cpuThreads: options.cpuThreads });
        if (ranks > 1)
          log(`tensor parallel: ${ranks} ranks simulated on the CPU, each with its own KV cache of the size below`);
        const blockBytes = kvBlockBytes(m, blockSize, kvBytesPerValue(kvQuant, device));
        numBlocks = cpuKvBlocks(
          blockBytes,
          { blockSize, maxNumSeqs, maxModelLen, kvQuant, device },
          options.kvCacheMemory,
          log,
        );
        kvCacheBytes = numBlocks * blockBytes * ranks;
      }
      if (quantization) log(`weights: quantized to ${quantization.name} at load${dummy ? ' (random blocks)' : ''}`);
      if (options.kvCompression) checkKvCompression(m, maxModelLen, kvQuant);
      // An fp8 cache takes the checkpoint's own K/V scales where it has them (FP8 checkpoints with a KV cache scheme).
      const kvScales = kvQuant === 'fp8' && !dummy ? checkpointKvScales(modelDir, m.kvShape.numLayers) : null;
      if (kvScales) log(`KV cache: fp8 with the checkpoint's per-layer K and V scales`);
      const runner = new ModelRunner(m, numBlocks, blockSize, kvQuant, kvScales ?? undefined);
      if (gpu) log(gpu.memoryReport());
      const t1 = performance.now();
      const config = m.config;
      const generation = loadGenerationConfig(modelDir, config);
      const tokenizer =
        dummy && !isGgufPath(modelDir) && !existsSync(join(modelDir, 'tokenizer.json'))
          ? dummyTokenizer(config.vocabSize, generation)
          : loadTokenizer(modelDir, generation);
      const chatTemplate = template
        ? storedChatTemplate(manifest && { ...manifest, template: undefined }, chatTemplateFrom(template, modelDir))
        : storedChatTemplate(manifest, loadChatTemplate(modelDir));
      log(startupLine(t1 - t0, performance.now() - t1, cudaStartup?.() ?? null));
      return {
        runner,
        numBlocks,
        kvCacheBytes,
        blockSize,
        maxModelLen,
        maxNumBatchedTokens,
        maxNumSeqs,
        modelDir,
        modelName: !resolved ? DEMO_MODEL_NAME : resolved.origin === 'path' ? basename(modelDir) : resolved.name,
        isDemo,
        backend: m.backend.name,
        deviceName: gpu ? gpu.ctx.drv.info.name : 'CPU',
        config,
        generation,
        tokenizer,
        chatTemplate,
        manifest,
      };
    },
  );
}

/**
 * One line of where start-up went: weights and KV cache sizing (on the GPU broken down: weights, kernels, KV sizing,
 * graphs: `cuda`), then tokenizer and template. CUDA graphs are captured later, on first use.
 */
function startupLine(modelMs: number, textMs: number, cuda: string | null): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const model = cuda ?? `weights and KV cache ${s(modelMs)}`;
  return `start-up ${s(modelMs + textMs)}: ${model}; tokenizer and template ${s(textMs)}`;
}

/**
 * --quantization's scheme where the backend runs it: GGUF types on both backends, FP8 on CUDA (a given backend must
 * have FP8 weights; the CUDA loader checks the device's compute capability); anything else one line.
 */
function weightQuantization(spelling: string, onCpu: boolean, backend: Backend | undefined): LoadQuantization {
  const scheme = parseLoadQuantization(spelling, '--quantization');
  if (!isFp8(scheme)) return scheme;
  if (onCpu) {
    throw new UserError(
      `--quantization ${spelling}: the CPU backend has no FP8 arithmetic; use --quantization q8_0 for 8-bit weights on the CPU`,
    );
  }
  if (backend && !backend.fp8Weights) throw new UserError(fp8Refusal(spelling, 'this CUDA backend has none'));
  return scheme;
}

/** The given backend's device, else --device (auto: CUDA when usable). */
export function chooseDevice(options: EngineOptions, log: (line: string) => void): 'cpu' | 'cuda' {
  return options.backend
    ? options.backend.name
    : selectDevice(options.device ?? 'auto', { note: log, cuda: options.cuda });
}

/** An engine setting that must be a positive integer; `flag` names it in the error as the user gave it. */
export function positiveInt(v: number, flag: string): number {
  if (!Number.isInteger(v) || v < 1) throw new UserError(`${flag} ${v}: expected a positive integer`);
  return v;
}

/** KV compression needs a model whose forward compacts its cache, and positions that attention's reach does not count. */
function checkKvCompression(m: Model, maxModelLen: number, kvQuant: KvQuant | undefined): void {
  const arch = m.config.architecture || m.config.modelType;
  if (!m.compactsKv) throw new UserError(`--kv-compression: ${arch} models cannot compress their KV cache yet`);
  const split = kvQuant && kvHeadMismatch(kvQuant, m.kvShape.headDim);
  if (split) throw new UserError(`--kv-compression: ${split}`);
  const window = m.config.slidingWindow;
  if (window > 0 && window < maxModelLen) {
    throw new UserError(
      `--kv-compression: this model's sliding-window attention (${window} tokens) would count compressed cache entries, not positions`,
    );
  }
}
