import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Backend } from '../backend/backend.ts';
import { CpuBackend } from '../backend/cpu/backend.ts';
import type { CudaSettings } from '../backend/cuda/settings.ts';
import { releasingOnError } from '../backend/release-on-error.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import type { SentenceTransformersConfig } from '../loader/sentence-transformers.ts';
import { loadTokenizer, type TextTokenizer } from '../loader/tokenizer.ts';
import { dummyTokenizer } from '../models/dummy.ts';
import { type LoadedPoolingModel, loadPoolingModel, poolingLengthLimit } from '../models/pooling-load.ts';
import type { PoolingTask } from '../models/pooling-model.ts';
import { resolveModel } from '../store/resolve.ts';
import { UserError } from '../util/errors.ts';
import { loadCudaPoolingModel } from './cuda-setup.ts';
import { chooseDevice, type EngineOptions, positiveInt } from './load.ts';
import { PoolingRunner, type StepPooler } from './pooling-runner.ts';
import { startPoolingThread } from './pooling-thread.ts';

/** How a pooling model's weights load: plain data, so the runner thread receives it as posted. */
export interface PoolingWeightsOptions {
  device: 'cpu' | 'cuda';
  /** --dtype (CUDA). */
  dtype?: string;
  dummy: boolean;
  /** The step shape the CUDA backend reserves its buffers for. */
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  cuda?: Partial<CudaSettings>;
  cpuThreads?: number;
}

/** Where a load's start-up lines and progress go (the runner thread posts them to the main thread's). */
export interface LoadOutput {
  log: (line: string) => void;
  progress?: (line: string | null) => void;
}

/** What the loaded weights tell the engine, the limits and the server: plain data, which the runner thread posts back. */
export interface PoolingFacts {
  task: PoolingTask;
  outputSize: number;
  normalized: boolean;
  /** Positions the encoder has. */
  maxPositions: number;
  backend: Backend['name'];
  deviceName: string;
  config: ModelConfig;
  /** The sentence-transformers settings (prompts, lower-casing); null for a folder without modules.json. */
  sentenceTransformers: SentenceTransformersConfig | null;
}

/** A pooling model's weights loaded on this thread or in the runner thread: its runner and how to free it. */
export interface LoadedPoolingWeights<R extends StepPooler = StepPooler> {
  runner: R;
  facts: PoolingFacts;
  /** Frees the weights (the backend made by the load, or the runner thread); a backend passed in stays the caller's. */
  release(): void | Promise<void>;
}

/** An embedding or reranking model ready to run, and what its engine and the server need to know. */
export interface PreparedPoolingModel {
  runner: StepPooler;
  /** See `LoadedPoolingWeights.release`. */
  release(): void | Promise<void>;
  task: PoolingTask;
  /** Longest input: --max-model-len, else max_seq_length, else the tokenizer's limit; at most the positions. */
  maxModelLen: number;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  modelDir: string;
  modelName: string;
  backend: Backend['name'];
  deviceName: string;
  config: ModelConfig;
  tokenizer: TextTokenizer;
  /** The sentence-transformers settings (prompts, lower-casing); null for a folder without modules.json. */
  sentenceTransformers: SentenceTransformersConfig | null;
}

/**
 * Loads an embedding or reranking model (a folder, GGUF file, stored name or Hugging Face cache repo): weights on the backend,
 * tokenizer, sentence-transformers settings. Every input runs whole in one step, so the token budget is raised to
 * the longest input when smaller. With the runner thread (`EngineOptions.runnerThread`, default on CUDA) the weights
 * and their backend live in a worker thread (pooling-thread.ts), so the step's launches leave this thread to the
 * server; this thread keeps the tokenizer and the limits.
 */
export async function preparePoolingModel(model: string, options: EngineOptions = {}): Promise<PreparedPoolingModel> {
  const resolved = resolveModel(model, { allowPaths: true });
  const modelDir = resolved.path;
  if ((options.tensorParallelSize ?? 1) > 1) {
    throw new UserError(
      `--tensor-parallel-size ${options.tensorParallelSize}: ${model} is an embedding or reranking model, which runs on one rank`,
    );
  }
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const device = chooseDevice(options, log);
  const onCpu = device === 'cpu';
  const weights: PoolingWeightsOptions = {
    device,
    dtype: options.dtype,
    dummy: options.loadFormat === 'dummy',
    maxNumSeqs: positiveInt(options.maxNumSeqs ?? (onCpu ? 64 : 256), '--max-num-seqs'),
    maxNumBatchedTokens: positiveInt(options.maxNumBatchedTokens ?? (onCpu ? 256 : 8192), '--max-num-batched-tokens'),
    cuda: options.cuda,
    cpuThreads: options.cpuThreads,
  };
  const output = { log, progress: options.progress };
  // A backend passed in lives on this thread, so it runs here.
  const threaded = !options.backend && (options.runnerThread ?? device === 'cuda');
  const loaded = threaded
    ? await startPoolingThread(modelDir, weights, output)
    : loadPoolingWeights(modelDir, weights, output, options.backend);
  try {
    const name = resolved.origin === 'path' ? basename(modelDir) : resolved.name;
    const described = describe(modelDir, name, loaded.facts, weights, options);
    return { runner: loaded.runner, release: () => loaded.release(), ...described };
  } catch (e) {
    // The weights are freed if anything after them fails (a missing tokenizer).
    try {
      await loaded.release();
    } catch (err) {
      if (e instanceof Error) e.cause ??= err;
    }
    throw e;
  }
}

/**
 * The weights on a backend (`given`, else one made here: CUDA or the CPU by `o.device`) and their runner; the same
 * on this thread and in the runner thread. A backend made here is freed if the load fails.
 */
export function loadPoolingWeights(
  modelDir: string,
  o: PoolingWeightsOptions,
  output: LoadOutput,
  given?: Backend,
): LoadedPoolingWeights<PoolingRunner> {
  let made: Backend | undefined;
  return releasingOnError(
    () => (made ? [made] : []),
    () => {
      let loaded: LoadedPoolingModel;
      let deviceName = 'CPU';
      if (o.device === 'cuda' && !given) {
        const cuda = loadCudaPoolingModel(modelDir, { ...o, ...output });
        [loaded, made] = [cuda.loaded, cuda.backend];
        deviceName = cuda.backend.ctx.drv.info.name;
        output.log(cuda.backend.memoryReport());
        output.log(`start-up: ${cuda.startup()}`);
      } else {
        loaded = loadPoolingModel(modelDir, given ?? (made = new CpuBackend({ threads: o.cpuThreads })));
      }
      const m = loaded.model;
      const facts: PoolingFacts = {
        task: m.task,
        outputSize: m.outputSize,
        normalized: m.normalized,
        maxPositions: m.encoder.maxPositions,
        backend: m.backend.name,
        deviceName,
        config: m.config,
        sentenceTransformers: loaded.sentenceTransformers,
      };
      return { runner: new PoolingRunner(m), facts, release: () => made?.release() };
    },
  );
}

/** The tokenizer and the limits, from the folder and what the weights said. */
function describe(
  modelDir: string,
  modelName: string,
  facts: PoolingFacts,
  o: PoolingWeightsOptions,
  options: EngineOptions,
): Omit<PreparedPoolingModel, 'runner' | 'release'> {
  const { config, sentenceTransformers: st, maxPositions } = facts;
  const tokenizer =
    o.dummy && !existsSync(join(modelDir, 'tokenizer.json'))
      ? dummyTokenizer(config.vocabSize, { bosTokenId: null, eosTokenIds: [] })
      : loadTokenizer(modelDir);
  // --max-model-len (PAGODA_CONTEXT_LENGTH) may lower the limit, never past the positions the model has.
  const wanted = positiveInt(
    options.maxModelLen ?? poolingLengthLimit(modelDir, maxPositions, st),
    options.maxModelLen === undefined ? 'max model length' : '--max-model-len',
  );
  const maxModelLen = Math.min(wanted, maxPositions);
  return {
    task: facts.task,
    maxModelLen,
    maxNumBatchedTokens: Math.max(o.maxNumBatchedTokens, maxModelLen),
    maxNumSeqs: o.maxNumSeqs,
    modelDir,
    modelName,
    backend: facts.backend,
    deviceName: facts.deviceName,
    config,
    tokenizer,
    sentenceTransformers: st,
  };
}
