import { join } from 'node:path';
import type { Backend, Tensor } from '../backend/backend.ts';
import { openCheckpoint } from '../loader/fp8-weights.ts';
import { ggufHeader, isGgufPath } from '../loader/gguf/files.ts';
import { GgufWeightSource } from '../loader/gguf/weights.ts';
import { loadModelConfig, type ModelConfig } from '../loader/hf-config.ts';
import { isPoolingDecoder, type ModelTask, modelTask, type PoolingDecoder } from '../loader/model-task.ts';
import { qwen3RerankRows } from '../loader/qwen3-reranker.ts';
import type { WeightSource } from '../loader/safetensors.ts';
import { readSentenceTransformers, type SentenceTransformersConfig } from '../loader/sentence-transformers.ts';
import { readTokenizerConfig } from '../loader/tokenizer.ts';
import { toFloat32 } from '../primitives/host-tensor.ts';
import type { PoolingMode } from '../primitives/pooling.ts';
import { UserError } from '../util/errors.ts';
import { bertRoot, buildBertEncoder, isRoberta } from './bert.ts';
import { dummyWeights } from './dummy.ts';
import { buildLlamaEncoder, type LlamaOptions } from './llama.ts';
import type { Encoder } from './model.ts';
import { EmbeddingModel, type Linear, type PoolingModel, RerankerModel } from './pooling-model.ts';
import { ModelWeights } from './weights.ts';

const PLAIN: LlamaOptions = { qkvBias: false };
const DECODERS: Record<PoolingDecoder, LlamaOptions> = {
  Qwen3Model: { qkvBias: false, qkNorm: 'per-head' },
  Qwen3ForCausalLM: { qkvBias: false, qkNorm: 'per-head' },
  Qwen3ForSequenceClassification: { qkvBias: false, qkNorm: 'per-head' },
  LlamaModel: PLAIN,
  LlamaForCausalLM: PLAIN,
  MistralModel: PLAIN,
  MistralForCausalLM: PLAIN,
};

/** A pooling model's stack: a decoder embedder (the Llama stack, causal) or a BERT-style encoder. */
export function poolingStack(cfg: ModelConfig): 'encoder' | 'decoder' {
  return isPoolingDecoder(cfg.architecture) ? 'decoder' : 'encoder';
}

/** A pooling model with what its folder says about inputs (sentence-transformers settings, when present). */
export interface LoadedPoolingModel {
  model: PoolingModel;
  sentenceTransformers: SentenceTransformersConfig | null;
}

/**
 * Loads an embedding or reranking model folder onto `backend`: the encoder's weights (or dummy ones), then the
 * pooling the sentence-transformers files name. Without them, vLLM's defaults: the first token for BERT-style
 * encoders, the last for decoders, normalized.
 */
export function loadPoolingModel(dir: string, backend: Backend, opts: { dummy?: boolean } = {}): LoadedPoolingModel {
  const cfg = loadModelConfig(dir);
  const task = modelTask(dir, cfg);
  const gguf = isGgufPath(dir);
  if (task === 'generate') {
    const what = gguf
      ? `${dir}: GGUF architecture "${ggufHeader(dir).value('general.architecture')}" without a pooling type`
      : `${join(dir, 'config.json')}: architecture "${cfg.architecture || cfg.modelType}"`;
    throw new UserError(`${what} generates text; it is not an embedding or reranking model`);
  }
  const st = sentenceTransformersOf(dir, cfg, task);
  const source = opts.dummy ? null : openWeights(dir, cfg, backend);
  try {
    const w = source ? new ModelWeights(source, backend, dir) : dummyWeights(dir, backend);
    const decoder = isPoolingDecoder(cfg.architecture) ? DECODERS[cfg.architecture] : undefined;
    // Refused before any weight reaches the device.
    const head = task === 'score' && decoder ? decoderRerankHead(dir, cfg, w, source, gguf) : null;
    const encoder: Encoder = decoder ? buildLlamaEncoder(decoder, cfg, w, backend) : buildBertEncoder(cfg, w, backend);
    if (head) {
      return { model: new RerankerModel(encoder, 'last', undefined, head(backend)), sentenceTransformers: st };
    }
    if (task === 'score' && gguf && source && !w.has('pooler.dense.weight')) {
      throw new UserError(
        `${dir}: a reranking GGUF without cls.weight (the head's dense layer, BERT's pooler, which llama.cpp's converter leaves out) is not supported`,
      );
    }
    if (task === 'score') return { model: crossEncoder(encoder, cfg, w), sentenceTransformers: st };
    // A GGUF's pooling type (none: the architecture's default), normalized as llama.cpp's embeddings are by default.
    const named = GGUF_POOLED[String(cfg.raw.pagoda_pooling_type)];
    const pooling = st?.pooling ?? named ?? (decoder ? 'last' : 'cls');
    return { model: new EmbeddingModel(encoder, pooling, st ? st.normalize : true), sentenceTransformers: st };
  } finally {
    source?.close();
  }
}

/** A folder's sentence-transformers settings: a reranker's files (if any) describe CrossEncoder, so only embedders'. */
export function sentenceTransformersOf(
  dir: string,
  cfg: ModelConfig,
  task: ModelTask,
): SentenceTransformersConfig | null {
  return task === 'embed' && !isGgufPath(dir) ? readSentenceTransformers(dir, cfg.hiddenSize) : null;
}

/**
 * The longest input a pooling model takes: its positions, capped by sentence-transformers' max_seq_length, else by
 * the tokenizer's model_max_length, as vLLM caps max_model_len. Known without the weights (what /v1/models says).
 */
export function poolingLengthLimit(dir: string, positions: number, st: SentenceTransformersConfig | null): number {
  const tokenizerMax = Number(readTokenizerConfig(dir).model_max_length);
  return Math.min(positions, st?.maxSeqLength ?? (tokenizerMax > 0 ? tokenizerMax : Infinity));
}

/** llama.cpp's pooling types that name a pooling. */
const GGUF_POOLED: Record<string, PoolingMode> = { mean: 'mean', cls: 'cls', last: 'last' };

/**
 * A folder's checkpoint, or a GGUF file's tensors under transformers' names with quantized ones dequantized to the
 * compute type (the pooling models have no quantized path).
 */
function openWeights(dir: string, cfg: ModelConfig, backend: Backend): WeightSource {
  if (!isGgufPath(dir)) return openCheckpoint(dir, cfg, backend.computeDtype).weights;
  const header = ggufHeader(dir);
  return new GgufWeightSource(header, String(header.value('general.architecture')), cfg, backend.computeDtype);
}

/**
 * A decoder reranker's head, checked before any weight reaches the device (built by the returned function): a qwen3
 * stack whose relevance logit is the LM head's "yes" row less its "no" row at the last token. A rank GGUF carries the
 * two rows as `cls.output` (read as `score`) and its rerank template; a folder converted to
 * Qwen3ForSequenceClassification has their difference as its one-row `score`; an unconverted Qwen3-Reranker folder
 * has them in its LM head (or tied embeddings), at the vocabulary's ids of "yes" and "no". Dummy weights: a one-row
 * `score` like the rest.
 */
function decoderRerankHead(
  dir: string,
  cfg: ModelConfig,
  w: ModelWeights,
  source: WeightSource | null,
  gguf: boolean,
): (backend: Backend) => Linear {
  // llama.cpp takes the last token and the softmax for qwen3 alone; other decoders rank from the first token, raw.
  if (cfg.modelType !== 'qwen3') {
    throw new UserError(
      `${dir}: a reranking GGUF of a ${cfg.modelType} decoder is not supported (decoder rerankers: qwen3)`,
    );
  }
  const H = cfg.hiddenSize;
  if (!source) return () => ({ weight: w.load('score.weight', [1, H]) });
  if (gguf) {
    const template = cfg.raw.pagoda_rerank_template;
    if (typeof template !== 'string' || !template.includes('{query}') || !template.includes('{document}')) {
      throw new UserError(
        `${dir}: a decoder reranking GGUF needs tokenizer.chat_template.rerank with {query} and {document} (the text a pair becomes); this file has ${typeof template === 'string' ? 'one without them' : 'none'}`,
      );
    }
    const shape = w.storedShape('score.weight');
    if (shape?.length !== 2 || shape[0] !== 2 || shape[1] !== H) {
      throw new UserError(
        `${dir}: a decoder reranking GGUF needs cls.output.weight as 2 rows ("yes", "no") of ${H}; this file has ${shape ? `[${shape.join(', ')}]` : 'none'}`,
      );
    }
    const rows = toFloat32(w.host('score.weight', [2, H]));
    const bias = w.has('score.bias') ? toFloat32(w.host('score.bias', [2])) : undefined;
    return (backend) => yesMinusNo(backend, rows.subarray(0, H), rows.subarray(H), bias);
  }
  if (cfg.architecture === 'Qwen3ForSequenceClassification') {
    const labels = labelCount(cfg);
    const shape = w.storedShape('score.weight');
    if (labels !== 1 || shape?.length !== 2 || shape[0] !== 1 || shape[1] !== H) {
      throw new UserError(
        `${join(dir, 'config.json')}: a Qwen3ForSequenceClassification reranker has one label and score.weight [1, ${H}]; this one has ${labels} label(s) and ${shape ? `[${shape.join(', ')}]` : 'no score.weight'}`,
      );
    }
    return () => ({ weight: w.load('score.weight', [1, H]) });
  }
  const [yes, no] = qwen3RerankRows(dir, cfg, source);
  return (backend) => yesMinusNo(backend, yes, no);
}

/** A sequence classifier's label count: id2label's, or num_labels (transformers' default 2). */
function labelCount(cfg: ModelConfig): number {
  return cfg.raw.id2label ? Object.keys(cfg.raw.id2label as object).length : Number(cfg.raw.num_labels ?? 2);
}

/** The classification head of a one-label sequence classifier (BERT's pooler + classifier, RoBERTa's head). */
function crossEncoder(encoder: Encoder, cfg: ModelConfig, w: ModelWeights): RerankerModel {
  const labels = labelCount(cfg);
  if (labels !== 1) {
    throw new UserError(`config.json: ${labels} labels; a reranker (cross-encoder) has one (id2label / num_labels)`);
  }
  const H = cfg.hiddenSize;
  const lin = (name: string, out: number) => ({
    weight: w.load(`${name}.weight`, [out, H]),
    bias: w.load(`${name}.bias`, [out]),
  });
  if (isRoberta(cfg))
    return new RerankerModel(encoder, 'cls', lin('classifier.dense', H), lin('classifier.out_proj', 1));
  return new RerankerModel(encoder, 'cls', lin(`${bertRoot(w, cfg)}pooler.dense`, H), lin('classifier', 1));
}

/**
 * A decoder reranker's head as one logit: llama.cpp's score, the first of softmax(yes, no), is sigmoid(yes - no), so
 * the "no" row is taken from the "yes" row at load (in float32), and the difference is computed and rounded once on the
 * device rather than as two large logits rounded to the storage type and then subtracted.
 */
function yesMinusNo(backend: Backend, yes: Float32Array, no: Float32Array, bias?: Float32Array): Linear {
  const weight = yes.map((y, i) => y - no[i]!);
  const f32 = (name: string, shape: number[], v: Float32Array): Tensor =>
    backend.loadWeight({ name, shape, dtype: 'f32', bytes: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) });
  return {
    weight: f32('score.weight', [1, yes.length], weight),
    bias: bias && f32('score.bias', [1], Float32Array.of(bias[0]! - bias[1]!)),
  };
}
