import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Backend } from '../backend/backend.ts';
import { CpuBackend } from '../backend/cpu/backend.ts';
import { releasingOnError } from '../backend/release-on-error.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import type { SentenceTransformersConfig } from '../loader/sentence-transformers.ts';
import { loadTokenizer, readTokenizerConfig, type TextTokenizer } from '../loader/tokenizer.ts';
import { dummyTokenizer } from '../models/dummy.ts';
import { type LoadedPoolingModel, loadPoolingModel } from '../models/pooling-load.ts';
import type { PoolingTask } from '../models/pooling-model.ts';
import { resolveModel } from '../store/resolve.ts';
import { UserError } from '../util/errors.ts';
import { loadCudaPoolingModel } from './cuda-setup.ts';
import { chooseDevice, type EngineOptions, positiveInt } from './load.ts';
import { PoolingRunner } from './pooling-runner.ts';

/** An embedding or reranking model ready to run, and what its engine and the server need to know. */
export interface PreparedPoolingModel {
  runner: PoolingRunner;
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
 * Loads an embedding or reranking model (a folder, stored name or Hugging Face cache repo): weights on the backend,
 * tokenizer, sentence-transformers settings. Every input runs whole in one step, so the token budget is raised to
 * the longest input when smaller.
 */
export function preparePoolingModel(model: string, options: EngineOptions = {}): PreparedPoolingModel {
  const resolved = resolveModel(model, { allowPaths: true });
  if (resolved.format === 'gguf') {
    throw new UserError(
      `${model}: GGUF embedding and reranking models are not supported yet; use the safetensors folder`,
    );
  }
  const modelDir = resolved.path;
  if ((options.tensorParallelSize ?? 1) > 1) {
    throw new UserError(
      `--tensor-parallel-size ${options.tensorParallelSize}: ${model} is an embedding or reranking model, which runs on one rank`,
    );
  }
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const device = chooseDevice(options, log);
  const dummy = options.loadFormat === 'dummy';
  const onCpu = device === 'cpu';
  const maxNumSeqs = positiveInt(options.maxNumSeqs ?? (onCpu ? 64 : 256), 'max num seqs');
  const budget = positiveInt(options.maxNumBatchedTokens ?? (onCpu ? 256 : 8192), 'max num batched tokens');
  let loaded: LoadedPoolingModel;
  let deviceName = 'CPU';
  let made: Backend | undefined;
  // A backend made here is freed if anything after it fails (a missing tokenizer); one passed in stays the caller's.
  return releasingOnError(
    () => (made ? [made] : []),
    (): PreparedPoolingModel => {
      if (device === 'cuda' && !options.backend) {
        const cuda = loadCudaPoolingModel(modelDir, {
          dtype: options.dtype,
          dummy,
          maxNumBatchedTokens: budget,
          maxNumSeqs,
          log,
          progress: options.progress,
          cuda: options.cuda,
        });
        [loaded, made] = [cuda.loaded, cuda.backend];
        deviceName = cuda.backend.ctx.drv.info.name;
        log(cuda.backend.memoryReport());
        log(`start-up: ${cuda.startup()}`);
      } else {
        loaded = loadPoolingModel(modelDir, options.backend ?? (made = new CpuBackend()));
      }
      const { model: m, sentenceTransformers: st } = loaded;
      const config = m.config;
      const tokenizer =
        dummy && !existsSync(join(modelDir, 'tokenizer.json'))
          ? dummyTokenizer(config.vocabSize, { bosTokenId: null, eosTokenIds: [] })
          : loadTokenizer(modelDir);
      const tokenizerMax = Number(readTokenizerConfig(modelDir).model_max_length);
      const limits = [m.encoder.maxPositions, st?.maxSeqLength ?? (tokenizerMax > 0 ? tokenizerMax : Infinity)];
      // --max-model-len (PAGODA_CONTEXT_LENGTH) may lower the limit, never past the positions the model has.
      const wanted = positiveInt(options.maxModelLen ?? Math.min(...limits), 'max model length');
      const maxModelLen = Math.min(wanted, m.encoder.maxPositions);
      return {
        runner: new PoolingRunner(m),
        task: m.task,
        maxModelLen,
        maxNumBatchedTokens: Math.max(budget, maxModelLen),
        maxNumSeqs,
        modelDir,
        modelName: resolved.origin === 'path' ? basename(modelDir) : resolved.name,
        backend: m.backend.name,
        deviceName,
        config,
        tokenizer,
        sentenceTransformers: st,
      };
    },
  );
}
