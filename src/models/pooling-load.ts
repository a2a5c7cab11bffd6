import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../backend/backend.ts';
import { openCheckpoint } from '../loader/fp8-weights.ts';
import { loadModelConfig, type ModelConfig } from '../loader/hf-config.ts';
import { readSentenceTransformers, type SentenceTransformersConfig } from '../loader/sentence-transformers.ts';
import { UserError } from '../util/errors.ts';
import { bertRoot, buildBertEncoder, isRoberta } from './bert.ts';
import { dummyWeights } from './dummy.ts';
import { buildLlamaEncoder, type LlamaOptions } from './llama.ts';
import type { Encoder } from './model.ts';
import { CrossEncoderModel, EmbeddingModel, type PoolingModel, type PoolingTask } from './pooling-model.ts';
import { ModelWeights } from './weights.ts';

/** What a model folder serves: generated text, embeddings, or relevance scores. */
export type ModelTask = 'generate' | PoolingTask;

const BERT_EMBED = ['BertModel', 'XLMRobertaModel', 'RobertaModel'];
const BERT_SCORE = [
  'BertForSequenceClassification',
  'XLMRobertaForSequenceClassification',
  'RobertaForSequenceClassification',
];
const BERT_TYPES = ['bert', 'xlm-roberta', 'roberta'];
const PLAIN: LlamaOptions = { qkvBias: false, qkNorm: false };
/** Decoders that embed with causal attention and last-token pooling (Qwen3-Embedding, e5-mistral). */
const DECODERS: Record<string, LlamaOptions> = {
  Qwen3Model: { qkvBias: false, qkNorm: true },
  Qwen3ForCausalLM: { qkvBias: false, qkNorm: true },
  LlamaModel: PLAIN,
  LlamaForCausalLM: PLAIN,
  MistralModel: PLAIN,
  MistralForCausalLM: PLAIN,
};

/** A pooling model's stack: a decoder embedder (the Llama stack, causal) or a BERT-style encoder. */
export function poolingStack(cfg: ModelConfig): 'encoder' | 'decoder' {
  return DECODERS[cfg.architecture] ? 'decoder' : 'encoder';
}

/**
 * The task of a model folder: a sequence classifier scores, a bare encoder or decoder (`BertModel`, `Qwen3Model`)
 * embeds, and so does a causal LM shipped as a sentence-transformers model (modules.json, as Qwen3-Embedding is);
 * everything else generates.
 */
export function modelTask(dir: string, cfg: ModelConfig): ModelTask {
  const a = cfg.architecture;
  if (BERT_SCORE.includes(a)) return 'score';
  if (BERT_EMBED.includes(a) || (!a && BERT_TYPES.includes(cfg.modelType))) return 'embed';
  if (a in DECODERS && (a.endsWith('Model') || existsSync(join(dir, 'modules.json')))) return 'embed';
  return 'generate';
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
  if (task === 'generate') {
    throw new UserError(
      `${join(dir, 'config.json')}: architecture "${cfg.architecture || cfg.modelType}" generates text; it is not an embedding or reranking model`,
    );
  }
  // A reranker's sentence-transformers files (if any) describe CrossEncoder, not pooling: only embedders read them.
  const st = task === 'embed' ? readSentenceTransformers(dir, cfg.hiddenSize) : null;
  const source = opts.dummy ? null : openCheckpoint(dir, cfg, backend.computeDtype).weights;
  try {
    const w = source ? new ModelWeights(source, backend, dir) : dummyWeights(dir, backend);
    const decoder = DECODERS[cfg.architecture];
    const encoder: Encoder = decoder ? buildLlamaEncoder(decoder, cfg, w, backend) : buildBertEncoder(cfg, w, backend);
    if (task === 'score') return { model: crossEncoder(encoder, cfg, w), sentenceTransformers: st };
    const pooling = st?.pooling ?? (decoder ? 'last' : 'cls');
    return { model: new EmbeddingModel(encoder, pooling, st ? st.normalize : true), sentenceTransformers: st };
  } finally {
    source?.close();
  }
}

/** The classification head of a one-label sequence classifier (BERT's pooler + classifier, RoBERTa's head). */
function crossEncoder(encoder: Encoder, cfg: ModelConfig, w: ModelWeights): CrossEncoderModel {
  const labels = cfg.raw.id2label ? Object.keys(cfg.raw.id2label as object).length : Number(cfg.raw.num_labels ?? 2);
  if (labels !== 1) {
    throw new UserError(`config.json: ${labels} labels; a reranker (cross-encoder) has one (id2label / num_labels)`);
  }
  const H = cfg.hiddenSize;
  const lin = (name: string, out: number) => ({
    weight: w.load(`${name}.weight`, [out, H]),
    bias: w.load(`${name}.bias`, [out]),
  });
  if (isRoberta(cfg)) return new CrossEncoderModel(encoder, lin('classifier.dense', H), lin('classifier.out_proj', 1));
  return new CrossEncoderModel(encoder, lin(`${bertRoot(w, cfg)}pooler.dense`, H), lin('classifier', 1));
}
