import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.ts';
import { releasingOnError } from '../backend/release-on-error.ts';
import { GrammarService } from '../grammar/grammar-service.ts';
import { loadGrammarVocabulary } from '../grammar/vocabulary.ts';
import { BackgroundTokenizer } from '../loader/background-tokenizer.ts';
import { type GenerationConfig, loadGenerationConfig } from '../loader/hf-config.ts';
import { samplingFrom } from '../primitives/sampling-names.ts';
import { type EngineOptions, type PreparedModel, prepareModel, type SpeculativeOptions } from '../runner/load.ts';
import type { ModelRunner } from '../runner/model-runner.ts';
import type { Manifest } from '../store/manifest.ts';
import { UserError } from '../util/errors.ts';
import { IncrementalDetokenizer } from './detokenizer.ts';
import { Engine } from './engine.ts';
import type { SpeculativeConfig } from './speculation.ts';
import type { SamplingParams } from './types.ts';

export interface LoadedEngine extends Omit<PreparedModel, 'runner'> {
  engine: Engine;
}

/** Loads one model (see `prepareModel`) and builds its engine. */
export function loadEngine(model: string | undefined, options: EngineOptions = {}): LoadedEngine {
  const { runner, ...loaded } = prepareModel(model, options);
  // Backends loaded here go with the engine (freed at its shutdown, or now if building it fails); one the caller
  // passed in stays the caller's.
  const loadedBackends = options.backend ? [] : [runner.model.backend];
  const engine = releasingOnError(
    () => loadedBackends,
    () => newEngine(runner, loaded, options, loadedBackends),
  );
  return { ...loaded, engine };
}

function newEngine(
  runner: ModelRunner,
  loaded: Omit<PreparedModel, 'runner'>,
  options: EngineOptions,
  loadedBackends: Backend[],
): Engine {
  const { tokenizer, generation, manifest, modelDir } = loaded;
  const speculative =
    options.speculative && speculativeConfig(options.speculative, options, runner.vocabSize, loadedBackends);
  return new Engine({
    runner,
    tokenizer,
    newTextStream: (promptIds, skipSpecialTokens = true) =>
      new IncrementalDetokenizer(tokenizer, { promptIds, skipSpecialTokens }),
    eosTokenIds: generation.eosTokenIds,
    maxModelLen: loaded.maxModelLen,
    numBlocks: loaded.numBlocks,
    blockSize: loaded.blockSize,
    enablePrefixCaching: options.enablePrefixCaching ?? true,
    asyncScheduling: options.asyncScheduling,
    seed: options.seed,
    maxLogprobs: options.maxLogprobs,
    scheduler: {
      maxNumBatchedTokens: loaded.maxNumBatchedTokens,
      maxNumSeqs: loaded.maxNumSeqs,
      policy: options.schedulingPolicy ?? 'fcfs',
    },
    samplingDefaults: modelSamplingDefaults(samplingSource(generation, options.generationConfig), manifest),
    kvCompression: options.kvCompression,
    promptEncoder: new BackgroundTokenizer(tokenizer, modelDir, generation, options.tokenizerWorker),
    grammar: new GrammarService({
      vocabulary: () => options.grammarVocabulary ?? loadGrammarVocabulary(modelDir),
      vocabSize: runner.vocabSize,
      stopTokenIds: [...generation.eosTokenIds],
      // Every running sequence may have a matcher, and waiting requests open theirs when they queue.
      capacity: 4 * loaded.maxNumSeqs,
      workers: options.grammarWorkers,
    }),
    speculative,
    release: () => {
      for (const b of loadedBackends) b.release();
    },
  });
}

/**
 * --speculative: n-gram lookup, or a draft model loaded beside the target with its own KV cache (the same device and
 * engine options; its backend joins `loadedBackends`); the draft must have the target's vocabulary, so its token ids
 * mean the same.
 */
function speculativeConfig(
  spec: SpeculativeOptions,
  options: EngineOptions,
  vocabSize: number,
  loadedBackends: Backend[],
): SpeculativeConfig {
  const numTokens = spec.numTokens;
  if (spec.proposer === 'ngram')
    return { numTokens, method: 'ngram', ngram: { min: spec.ngramMin, max: spec.ngramMax } };
  // The draft is its own model: the target's adapter and chat template are not its.
  const draft = prepareModel(spec.proposer, {
    ...options,
    speculative: undefined,
    lora: undefined,
    chatTemplate: undefined,
  });
  if (!options.backend) loadedBackends.push(draft.runner.model.backend);
  if (draft.runner.vocabSize !== vocabSize) {
    throw new UserError(
      `--speculative ${spec.proposer}: its vocabulary has ${draft.runner.vocabSize} tokens, the model's ${vocabSize}; a draft model needs the same vocabulary`,
    );
  }
  const { runner, numBlocks, blockSize, maxModelLen } = draft;
  return { numTokens, method: 'draft', draft: { runner, numBlocks, blockSize, maxModelLen } };
}

/**
 * A model's request defaults: its Modelfile PARAMETERs (which share Ollama's option names) over generation_config.json's
 * sampling values (as vLLM takes them).
 */
export function modelSamplingDefaults(g: GenerationConfig | null, manifest: Manifest | null): Partial<SamplingParams> {
  return { ...generationDefaults(g), ...samplingFrom('ollama', manifest?.parameters ?? {}) };
}

/**
 * Where --generation-config takes sampling defaults from: the model's generation_config.json (auto), none (vllm), or
 * a folder's generation_config.json.
 */
export function samplingSource(model: GenerationConfig, flag = 'auto'): GenerationConfig | null {
  if (flag === 'auto') return model;
  if (flag === 'vllm') return null;
  if (!existsSync(join(flag, 'generation_config.json'))) {
    throw new UserError(`--generation-config ${flag}: expected auto, vllm or a folder with a generation_config.json`);
  }
  return loadGenerationConfig(flag, model);
}

function generationDefaults(g: GenerationConfig | null): Partial<SamplingParams> {
  const d: Partial<SamplingParams> = {};
  if (!g) return d;
  if (g.temperature !== undefined) d.temperature = g.temperature;
  if (g.topP !== undefined) d.topP = g.topP;
  if (g.topK !== undefined) d.topK = g.topK;
  if (g.repetitionPenalty !== undefined) d.repetitionPenalty = g.repetitionPenalty;
  return d;
}
