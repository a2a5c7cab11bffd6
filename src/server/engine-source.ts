import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadEngine, modelSamplingDefaults, samplingSource } from '../engine/load.ts';
import { type LoadedPoolingEngine, loadPoolingEngine } from '../engine/pooling-load.ts';
import { loadChatTemplate } from '../loader/chat-template.ts';
import { DEMO_MODEL_NAME } from '../loader/demo-model.ts';
import { ggufHeader, isGgufPath } from '../loader/gguf/files.ts';
import { loadGenerationConfig, loadModelConfig, type ModelConfig } from '../loader/hf-config.ts';
import { type ModelTask, modelTask } from '../loader/model-task.ts';
import { warmWeightFiles } from '../loader/warm-files.ts';
import { positionCount } from '../models/bert.ts';
import { poolingLengthLimit, sentenceTransformersOf } from '../models/pooling-load.ts';
import { samplingTo } from '../primitives/sampling-names.ts';
import { kvCacheDtype } from '../runner/kv-cache-choice.ts';
import type { EngineOptions } from '../runner/load.ts';
import { summarizeGguf } from '../store/gguf-summary.ts';
import type { Manifest, ParameterValue } from '../store/manifest.ts';
import { resolveModel } from '../store/resolve.ts';
import { summarizeSafetensors } from '../store/safetensors-summary.ts';
import { UserError } from '../util/errors.ts';
import type { ServeConfig } from './config.ts';
import type { ModelInfo } from './model-info.ts';
import type { LoadedModel, ModelEntry, ModelSource } from './models.ts';

const BYTES_PER_WEIGHT: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2 };

/** Weight files' total size and newest modification time (a GGUF model is one file). */
function weightFiles(dir: string): { bytes: number; modified: Date } {
  const file = statSync(dir);
  if (file.isFile()) return { bytes: file.size, modified: file.mtime };
  let bytes = 0;
  let modified = 0;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.safetensors') && !name.endsWith('.gguf')) continue;
    const s = statSync(join(dir, name));
    bytes += s.size;
    modified = Math.max(modified, s.mtimeMs);
  }
  if (modified === 0) modified = statSync(join(dir, 'config.json')).mtimeMs;
  return { bytes, modified: new Date(modified) };
}

/** An embedding or reranking model's longest input as its load sets it (max_seq_length caps it). */
function poolingLimit(dir: string, config: ModelConfig, task: ModelTask): number {
  return poolingLengthLimit(dir, positionCount(config), sentenceTransformersOf(dir, config, task));
}

/** The manifest a store name carries (null for folders and cache repos, or when it no longer resolves). */
function storedManifest(ref: string): Manifest | null {
  try {
    return resolveModel(ref, { allowPaths: true }).manifest;
  } catch {
    return null;
  }
}

/**
 * The production ModelSource: models are Hugging Face folders loaded through `loadEngine` (config, tokenizer, chat
 * template, weights, KV cache), one engine per model. `PAGODA_CONTEXT_LENGTH` caps each model's length and
 * `PAGODA_NUM_PARALLEL` its concurrent sequences.
 */
export class EngineModelSource implements ModelSource {
  constructor(
    private readonly config: ServeConfig,
    private readonly engineOptions: EngineOptions,
  ) {}

  async inspect(entry: ModelEntry): Promise<ModelInfo> {
    const config = loadModelConfig(entry.path);
    const manifest = entry.ref === DEMO_MODEL_NAME ? null : storedManifest(entry.ref);
    const files = weightFiles(entry.path);
    // A GGUF file says what it holds: its architecture, weight count, file type and metadata, as Ollama shows them.
    const gguf = isGgufPath(entry.path) ? summarizeGguf(ggufHeader(entry.path)) : null;
    const folder = gguf ? null : summarizeSafetensors(entry.path, config);
    const task = entry.ref === DEMO_MODEL_NAME ? 'generate' : modelTask(entry.path, config);
    return {
      architecture: config.architecture,
      family: gguf?.family ?? (config.modelType || config.architecture),
      format: entry.ref === DEMO_MODEL_NAME ? 'demo' : gguf ? 'gguf' : 'safetensors',
      parameterCount:
        gguf?.parameterCount ??
        folder?.parameterCount ??
        Math.round(files.bytes / (BYTES_PER_WEIGHT[config.dtype] ?? 4)),
      quantization: gguf?.quantization ?? folder?.quantization ?? config.dtype,
      ggufMetadata: gguf?.modelInfo,
      sizeBytes: files.bytes,
      modifiedAt: files.modified,
      maxContextLength: task === 'generate' ? config.maxPositionEmbeddings : poolingLimit(entry.path, config, task),
      config: config.raw,
      chatTemplate: entry.chatTemplate?.source ?? manifest?.template ?? loadChatTemplate(entry.path)?.source ?? null,
      manifest,
      parameters: {
        ...(samplingTo(
          'ollama',
          modelSamplingDefaults(
            samplingSource(loadGenerationConfig(entry.path, config), this.engineOptions.generationConfig),
            null,
          ),
        ) as Record<string, ParameterValue>),
        ...manifest?.parameters,
      },
      task,
    };
  }

  async load(entry: ModelEntry): Promise<LoadedModel> {
    // Cold files are read here without blocking the server; the synchronous load below then reads from memory.
    await warmWeightFiles(entry.path);
    const config = loadModelConfig(entry.path);
    if (entry.ref !== DEMO_MODEL_NAME && modelTask(entry.path, config) !== 'generate') {
      if (entry.lora)
        throw new UserError(`${entry.name}: a LoRA adapter merges into a text generator, not ${entry.path}`);
      return this.loadPooling(entry);
    }
    const modelMax = config.maxPositionEmbeddings;
    const wanted = this.engineOptions.maxModelLen ?? this.config.contextLength;
    const loaded = loadEngine(entry.ref, {
      ...this.engineOptions,
      lora: entry.lora,
      // --chat-template is the start-up models' (and their adapters'), never a model found in the store.
      chatTemplate: entry.chatTemplate,
      kvCacheType: this.config.kvCacheType,
      maxModelLen: wanted === null || wanted === undefined ? undefined : Math.min(wanted, modelMax),
      maxNumSeqs: this.engineOptions.maxNumSeqs ?? this.config.numParallel ?? undefined,
      // --flash-attention 0: the CUDA backend's simple attention kernel (the CPU backend has only one).
      cuda:
        this.config.flashAttention === 'off'
          ? { ...this.engineOptions.cuda, simpleAttention: true }
          : this.engineOptions.cuda,
      log: (line) => this.engineOptions.log?.(`${entry.name}: ${line}`),
    });
    const { maxModelLen } = loaded.engine.config;
    return {
      engine: loaded.engine,
      tokenizer: loaded.tokenizer,
      chatTemplate: loaded.chatTemplate,
      ...(this.config.toolCallFormat && { toolCallFormat: this.config.toolCallFormat }),
      parameters: loaded.manifest?.parameters,
      contextLength: maxModelLen,
      maxRunning: loaded.engine.config.scheduler.maxNumSeqs,
      backend: loaded.backend,
      kvCacheBytes: loaded.kvCacheBytes,
    };
  }

  /** An embedding or reranking model: its pooling engine (no KV cache) and sentence-transformers settings. */
  private async loadPooling(entry: ModelEntry): Promise<LoadedModel> {
    return servedPoolingModel(
      await loadPoolingEngine(entry.ref, {
        ...this.engineOptions,
        dtype: kvCacheDtype(this.config.kvCacheType, this.engineOptions.dtype),
        maxModelLen: this.engineOptions.maxModelLen ?? this.config.contextLength ?? undefined,
        maxNumSeqs: this.engineOptions.maxNumSeqs ?? this.config.numParallel ?? undefined,
        log: (line) => this.engineOptions.log?.(`${entry.name}: ${line}`),
      }),
    );
  }
}

/** What the server serves of a loaded embedding or reranking model (its engine generates nothing; no KV cache). */
export function servedPoolingModel(loaded: LoadedPoolingEngine): LoadedModel {
  const st = loaded.sentenceTransformers;
  const raw = loaded.config.raw;
  const dims = raw.matryoshka_dimensions;
  return {
    engine: loaded.engine,
    tokenizer: loaded.tokenizer,
    chatTemplate: null,
    contextLength: loaded.maxModelLen,
    maxRunning: loaded.maxNumSeqs,
    backend: loaded.backend,
    kvCacheBytes: 0,
    pooling: {
      engine: loaded.engine,
      prompts: st?.prompts ?? {},
      doLowerCase: st?.doLowerCase ?? false,
      includePrompt: st?.includePrompt ?? true,
      pairTypes: Number(raw.type_vocab_size ?? 2) > 1,
      rerankTemplate: typeof raw.pagoda_rerank_template === 'string' ? raw.pagoda_rerank_template : null,
      matryoshka: Array.isArray(dims) ? dims.filter((d) => typeof d === 'number') : raw.is_matryoshka === true,
    },
  };
}
