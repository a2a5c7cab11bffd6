import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.ts';
import { textModelConfig } from './config-defaults.ts';
import { ggufConfigJson, ggufGenerationJson, isGgufPath } from './gguf/files.ts';
import { withNomicBertKeys } from './nomic-bert-config.ts';
import { withQwen3RerankerKeys } from './qwen3-reranker.ts';

/** rope_scaling / rope_parameters as the model ships them, with the type under one name. */
export interface RopeScaling {
  type: string;
  [key: string]: unknown;
}

/** A Hugging Face config.json normalized across transformers 4 and 5 and across architectures. */
export interface ModelConfig {
  architecture: string;
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  normEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** Fraction of head_dim that is rotated (1 for Llama-family). */
  partialRotaryFactor: number;
  /** Per-pair divisors of the RoPE frequencies (a GGUF file's `rope_freqs`, Llama 3.1/3.2's scaling); null if none. */
  ropeFreqFactors: readonly number[] | null;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  slidingWindow: number;
  hiddenAct: string;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** Stored weight dtype as declared ('float32', 'bfloat16', 'float16'). */
  dtype: string;
  raw: Record<string, unknown>;
}

/** Sampling defaults and EOS ids from generation_config.json. */
export interface GenerationConfig {
  eosTokenIds: number[];
  bosTokenId: number | null;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  maxNewTokens?: number;
  doSample?: boolean;
}

/** Experts per sparse layer as config.json names them (`num_experts`, Mixtral's `num_local_experts`); 0: dense. */
export function expertCountOf(cfg: ModelConfig): number {
  return Number(cfg.raw.num_experts ?? cfg.raw.num_local_experts ?? 0);
}

/** Reads a JSON object file; a missing file or bad JSON is a one-line UserError naming the file and the place. */
export function readJson(path: string): Record<string, unknown> {
  const v = readJsonValue(path);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new UserError(
      `${path}: expected a JSON object at the top level, found ${Array.isArray(v) ? 'an array' : typeof v}`,
    );
  }
  return v as Record<string, unknown>;
}

/** Reads a JSON file of any shape, with readJson's errors. */
export function readJsonValue(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UserError(`${path}: file not found`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UserError(`${path}: not valid JSON${jsonErrorPlace(text, (err as Error).message)}`);
  }
}

/** " at line L column C (reason)" from JSON.parse's message, kept to one line (V8 may quote the source). */
function jsonErrorPlace(text: string, message: string): string {
  const pos = /at position (\d+)/.exec(message);
  const reason = message
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, '')
    .replace(/\s+/g, ' ');
  if (!pos) return ` (${reason})`;
  const before = text.slice(0, Number(pos[1]));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return ` at line ${line} column ${column} (${reason})`;
}

function ids(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

/** The epsilon key of the families whose norms are LayerNorms, by model type (the others read rms_norm_eps). */
const LAYER_NORM_EPS_KEY: Record<string, string> = {
  starcoder2: 'norm_epsilon',
  phi: 'layer_norm_eps',
  cohere: 'layer_norm_eps',
  cohere2: 'layer_norm_eps',
  stablelm: 'layer_norm_eps',
  nemotron: 'norm_eps',
  gpt2: 'layer_norm_epsilon',
  gpt_bigcode: 'layer_norm_epsilon',
};

export function parseModelConfig(file: Record<string, unknown>, path = 'config.json'): ModelConfig {
  const raw = withNomicBertKeys(textModelConfig(file), path);
  const num = (keys: string[], fallback?: number): number => {
    for (const k of keys) if (typeof raw[k] === 'number') return raw[k] as number;
    if (fallback !== undefined) return fallback;
    throw new UserError(`${path}: missing "${keys[0]}" (expected a number)`);
  };
  const architectures = raw.architectures;
  const architecture = Array.isArray(architectures) && typeof architectures[0] === 'string' ? architectures[0] : '';
  const modelType = typeof raw.model_type === 'string' ? raw.model_type : '';
  if (!architecture && !modelType) throw new UserError(`${path}: neither "architectures" nor "model_type" is set`);

  const hiddenSize = num(['hidden_size', 'n_embd', 'd_model']);
  const numHeads = num(['num_attention_heads', 'n_head']);
  const intermediate = raw.intermediate_size ?? raw.n_inner;
  // transformers 5 nests rope settings in rope_parameters; 4 keeps rope_theta and rope_scaling at the top level.
  const params = (raw.rope_parameters ?? null) as Record<string, unknown> | null;
  const scalingRaw = (raw.rope_scaling ?? params ?? null) as Record<string, unknown> | null;
  // The Qwen VL models' M-RoPE (4.x names it "mrope"): with text alone its three position sections all hold the
  // token's position, so it is the plain rotation.
  const scalingName = (scalingRaw?.rope_type ?? scalingRaw?.type ?? 'default') as string;
  const scalingType = scalingName === 'mrope' ? 'default' : scalingName;
  const ropeTheta = (params?.rope_theta ?? raw.rope_theta ?? 10000) as number;
  // The key the family's own config class reads comes first: a config may carry another family's key as well.
  const ownEps = LAYER_NORM_EPS_KEY[modelType];
  const eps = num(
    [...(ownEps ? [ownEps] : []), 'rms_norm_eps', 'layer_norm_epsilon', 'layer_norm_eps', 'norm_epsilon'],
    1e-5,
  );
  return {
    architecture,
    modelType,
    vocabSize: num(['vocab_size']),
    hiddenSize,
    intermediateSize: typeof intermediate === 'number' ? intermediate : 4 * hiddenSize,
    numLayers: num(['num_hidden_layers', 'n_layer', 'num_layers']),
    numHeads,
    // GPTBigCode's multi-query attention (its default) has one K/V head.
    numKvHeads: num(['num_key_value_heads'], modelType === 'gpt_bigcode' && raw.multi_query !== false ? 1 : numHeads),
    headDim: typeof raw.head_dim === 'number' ? raw.head_dim : hiddenSize / numHeads,
    maxPositionEmbeddings: num(['max_position_embeddings', 'n_positions', 'n_ctx'], 2048),
    normEps: eps,
    ropeTheta,
    ropeScaling: scalingRaw && scalingType !== 'default' ? { ...scalingRaw, type: scalingType } : null,
    partialRotaryFactor: (params?.partial_rotary_factor ?? raw.partial_rotary_factor ?? 1) as number,
    ropeFreqFactors: Array.isArray(raw.rope_freq_factors) ? (raw.rope_freq_factors as number[]) : null,
    tieWordEmbeddings: raw.tie_word_embeddings !== false,
    attentionBias: raw.attention_bias === true,
    slidingWindow:
      raw.use_sliding_window === false ? 0 : typeof raw.sliding_window === 'number' ? raw.sliding_window : 0,
    hiddenAct: (raw.hidden_act ?? raw.activation_function ?? 'silu') as string,
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : null,
    eosTokenIds: ids(raw.eos_token_id),
    dtype: (raw.dtype ?? raw.torch_dtype ?? 'float32') as string,
    raw,
  };
}

/** The config of a model folder, or of a GGUF file (its metadata as config.json would say it). */
export function loadModelConfig(dir: string): ModelConfig {
  if (isGgufPath(dir)) return parseModelConfig(ggufConfigJson(dir), dir);
  if (!existsSync(dir)) throw new UserError(`${dir}: model folder not found`);
  const path = join(dir, 'config.json');
  if (!existsSync(path)) {
    throw new UserError(`${path}: file not found (expected a Hugging Face model folder with config.json)`);
  }
  return parseModelConfig(withQwen3RerankerKeys(readJson(path), dir), path);
}

/** A folder's generation_config.json; ids it leaves out are `model`'s. */
export function loadGenerationConfig(
  dir: string,
  model: Pick<ModelConfig, 'eosTokenIds' | 'bosTokenId'>,
): GenerationConfig {
  const path = join(dir, 'generation_config.json');
  const raw = isGgufPath(dir) ? ggufGenerationJson(dir) : existsSync(path) ? readJson(path) : {};
  const eos = ids(raw.eos_token_id);
  const opt = (k: string) => (typeof raw[k] === 'number' ? (raw[k] as number) : undefined);
  return {
    eosTokenIds: eos.length ? eos : model.eosTokenIds,
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : model.bosTokenId,
    temperature: opt('temperature'),
    topP: opt('top_p'),
    topK: opt('top_k'),
    repetitionPenalty: opt('repetition_penalty'),
    maxNewTokens: opt('max_new_tokens'),
    doSample: typeof raw.do_sample === 'boolean' ? raw.do_sample : undefined,
  };
}
