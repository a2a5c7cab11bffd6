import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Backend } from '../backend/backend.ts';
import { CpuBackend } from '../backend/cpu/backend.ts';
import { IncrementalDetokenizer } from '../engine/detokenizer.ts';
import { Engine } from '../engine/engine.ts';
import type { SamplingParams } from '../engine/types.ts';
import { type ChatTemplate, loadChatTemplate } from '../loader/chat-template.ts';
import { DEMO_MODEL_NAME, ensureDemoModel } from '../loader/demo-model.ts';
import { type GenerationConfig, loadGenerationConfig, type ModelConfig } from '../loader/hf-config.ts';
import { loadTokenizer, type TextTokenizer } from '../loader/tokenizer.ts';
import { loadModel } from '../models/load.ts';
import { UserError } from '../util/errors.ts';
import { kvBlockBytes, ModelRunner } from './model-runner.ts';

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
  schedulingPolicy?: 'fcfs' | 'priority';
  /** Defaults to the CPU backend. */
  backend?: Backend;
  /** Start-up lines (KV cache size); default: stderr. */
  log?: (line: string) => void;
}

export interface LoadedEngine {
  engine: Engine;
  modelDir: string;
  /** What clients see as the model's name. */
  modelName: string;
  isDemo: boolean;
  backend: Backend['name'];
  config: ModelConfig;
  generation: GenerationConfig;
  tokenizer: TextTokenizer;
  chatTemplate: ChatTemplate | null;
}

const DEFAULT_CPU_KV_BYTES = 256 * 2 ** 20;

/** True when `arg` names a model rather than being a prompt: the demo model's name or an existing folder. */
export function isModelReference(arg: string): boolean {
  return arg === DEMO_MODEL_NAME || (existsSync(arg) && statSync(arg).isDirectory());
}

/**
 * Loads everything one model needs and builds its engine: config, generation config, tokenizer, chat template,
 * weights on the backend, KV cache sized from `kvCacheMemory`. `model` is a folder or the demo model (name or none).
 */
export function loadEngine(model: string | undefined, options: EngineOptions = {}): LoadedEngine {
  const isDemo = model === undefined || model === DEMO_MODEL_NAME;
  const modelDir = isDemo ? ensureDemoModel() : resolve(model);
  if (!isDemo && !(existsSync(modelDir) && statSync(modelDir).isDirectory())) {
    throw new UserError(`${model}: no such model folder (expected a Hugging Face model folder with config.json)`);
  }
  const backend = options.backend ?? new CpuBackend();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const m = loadModel(modelDir, backend);
  const config = m.config;
  const generation = loadGenerationConfig(modelDir, config);
  const tokenizer = loadTokenizer(modelDir, generation);
  const chatTemplate = loadChatTemplate(modelDir);

  const onCpu = backend.name === 'cpu';
  const blockSize = positiveInt(options.blockSize ?? 16, 'block size');
  const maxModelLen = positiveInt(options.maxModelLen ?? config.maxPositionEmbeddings, 'max model length');
  if (maxModelLen > config.maxPositionEmbeddings) {
    throw new UserError(
      `max model length ${maxModelLen} exceeds the model's max_position_embeddings (${config.maxPositionEmbeddings})`,
    );
  }
  const maxNumSeqs = positiveInt(options.maxNumSeqs ?? (onCpu ? 64 : 256), 'max num seqs');
  const maxNumBatchedTokens = positiveInt(
    options.maxNumBatchedTokens ?? (onCpu ? 256 : 8192),
    'max num batched tokens',
  );
  const blockBytes = kvBlockBytes(m, blockSize, onCpu ? 4 : 2);
  // Without an explicit size, take no more than every sequence at full length could use.
  const useful = maxNumSeqs * Math.ceil(maxModelLen / blockSize) * blockBytes;
  const bytes = options.kvCacheMemory ?? Math.min(DEFAULT_CPU_KV_BYTES, useful);
  const numBlocks = Math.floor(bytes / blockBytes);
  if (numBlocks < 1) {
    throw new UserError(
      `KV cache memory of ${bytes} bytes holds no block (one block of ${blockSize} tokens takes ${blockBytes} bytes)`,
    );
  }
  const runner = new ModelRunner(m, numBlocks, blockSize);
  log(
    `KV cache: ${numBlocks} blocks of ${blockSize} tokens (${((numBlocks * blockBytes) / 2 ** 20).toFixed(1)} MiB), ` +
      `up to ${numBlocks * blockSize} concurrent tokens`,
  );

  const engine = new Engine({
    runner,
    tokenizer,
    newTextStream: (promptIds) => new IncrementalDetokenizer(tokenizer, { promptIds, skipSpecialTokens: true }),
    eosTokenIds: generation.eosTokenIds,
    maxModelLen,
    numBlocks,
    blockSize,
    enablePrefixCaching: options.enablePrefixCaching ?? true,
    scheduler: { maxNumBatchedTokens, maxNumSeqs, policy: options.schedulingPolicy ?? 'fcfs' },
    samplingDefaults: samplingDefaults(generation),
  });
  return {
    engine,
    modelDir,
    modelName: isDemo ? DEMO_MODEL_NAME : basename(modelDir),
    isDemo,
    backend: backend.name,
    config,
    generation,
    tokenizer,
    chatTemplate,
  };
}

/** generation_config.json's sampling values become the request defaults, as vLLM does. */
function samplingDefaults(g: GenerationConfig): Partial<SamplingParams> {
  const d: Partial<SamplingParams> = {};
  if (g.temperature !== undefined) d.temperature = g.temperature;
  if (g.topP !== undefined) d.topP = g.topP;
  if (g.topK !== undefined) d.topK = g.topK;
  if (g.repetitionPenalty !== undefined) d.repetitionPenalty = g.repetitionPenalty;
  return d;
}

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 1) throw new UserError(`${what} ${v}: expected a positive integer`);
  return v;
}
