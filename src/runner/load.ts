import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Backend } from '../backend/backend.ts';
import { CpuBackend } from '../backend/cpu/backend.ts';
import { IncrementalDetokenizer } from '../engine/detokenizer.ts';
import { Engine } from '../engine/engine.ts';
import type { SamplingParams } from '../engine/types.ts';
import { BackgroundTokenizer } from '../loader/background-tokenizer.ts';
import { loadChatTemplate } from '../loader/chat-template.ts';
import { DEMO_MODEL_NAME, ensureDemoModel } from '../loader/demo-model.ts';
import { type GenerationConfig, loadGenerationConfig, type ModelConfig } from '../loader/hf-config.ts';
import { loadTokenizer, type TextTokenizer } from '../loader/tokenizer.ts';
import { loadModel } from '../models/load.ts';
import { type PromptTemplate, samplingFromParameters, storedChatTemplate } from '../store/model-prompt.ts';
import { resolveModel } from '../store/resolve.ts';
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
  /** The model's Jinja template, or a stored model's Go TEMPLATE with its SYSTEM and MESSAGEs. */
  chatTemplate: PromptTemplate | null;
}

const DEFAULT_CPU_KV_BYTES = 256 * 2 ** 20;

/** True when `arg` names a model rather than being a prompt: the demo model, a folder, or a stored or cached name. */
export function isModelReference(arg: string): boolean {
  if (arg === DEMO_MODEL_NAME || (existsSync(arg) && statSync(arg).isDirectory())) return true;
  try {
    resolveModel(arg);
    return true;
  } catch {
    return false;
  }
}

/**
 * Loads everything one model needs and builds its engine: config, generation config, tokenizer, chat template,
 * weights on the backend, KV cache sized from `kvCacheMemory`. `model` is a folder or the demo model (name or none).
 */
export function loadEngine(model: string | undefined, options: EngineOptions = {}): LoadedEngine {
  const isDemo = model === undefined || model === DEMO_MODEL_NAME;
  // A store name, a Hugging Face cache repo or a folder (see store/resolve.ts).
  const resolved = isDemo ? null : resolveModel(model, { allowPaths: true });
  if (resolved?.format === 'gguf') throw new UserError(`${model}: GGUF models are not supported yet`);
  const modelDir = resolved ? resolved.path : ensureDemoModel();
  const manifest = resolved?.manifest ?? null;
  const backend = options.backend ?? new CpuBackend();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const m = loadModel(modelDir, backend);
  const config = m.config;
  const generation = loadGenerationConfig(modelDir, config);
  const tokenizer = loadTokenizer(modelDir, generation);
  const chatTemplate = storedChatTemplate(manifest, loadChatTemplate(modelDir));

  const onCpu = backend.name === 'cpu';
  const blockSize = positiveInt(options.blockSize ?? 16, 'block size');
  const numCtx = typeof manifest?.parameters.num_ctx === 'number' ? manifest.parameters.num_ctx : undefined;
  const maxModelLen = positiveInt(
    options.maxModelLen ?? Math.min(numCtx ?? Number.POSITIVE_INFINITY, config.maxPositionEmbeddings),
    'max model length',
  );
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
    samplingDefaults: { ...samplingDefaults(generation), ...samplingFromParameters(manifest?.parameters ?? {}) },
    promptEncoder: new BackgroundTokenizer(tokenizer, modelDir, generation),
  });
  return {
    engine,
    modelDir,
    modelName: !resolved ? DEMO_MODEL_NAME : resolved.origin === 'path' ? basename(modelDir) : resolved.name,
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
