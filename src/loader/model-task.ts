import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from './hf-config.ts';

/** What a model folder or GGUF file serves: generated text, embeddings, or relevance scores. */
export type ModelTask = 'generate' | 'embed' | 'score';

const BERT_EMBED = ['BertModel', 'XLMRobertaModel', 'RobertaModel', 'NomicBertModel'];
const BERT_SCORE = [
  'BertForSequenceClassification',
  'XLMRobertaForSequenceClassification',
  'RobertaForSequenceClassification',
];
const BERT_TYPES = ['bert', 'xlm-roberta', 'roberta'];

/** Decoders that embed with causal attention and last-token pooling (Qwen3-Embedding, e5-mistral). */
export const POOLING_DECODERS = [
  'Qwen3Model',
  'Qwen3ForCausalLM',
  'LlamaModel',
  'LlamaForCausalLM',
  'MistralModel',
  'MistralForCausalLM',
] as const;
export type PoolingDecoder = (typeof POOLING_DECODERS)[number];

export const isPoolingDecoder = (architecture: string): architecture is PoolingDecoder =>
  (POOLING_DECODERS as readonly string[]).includes(architecture);

/**
 * The task of a model folder: a sequence classifier scores, a bare encoder or decoder (`BertModel`, `Qwen3Model`)
 * embeds, and so does a causal LM shipped as a sentence-transformers model (modules.json, as Qwen3-Embedding is);
 * everything else generates. A GGUF file says it pools by its pooling type (gguf/config.ts): rank scores, the
 * others embed.
 */
export function modelTask(dir: string, cfg: ModelConfig): ModelTask {
  const gguf = cfg.raw.gguf_pooling_type;
  if (gguf !== undefined) return gguf === 'rank' ? 'score' : 'embed';
  const a = cfg.architecture;
  if (BERT_SCORE.includes(a)) return 'score';
  if (BERT_EMBED.includes(a) || (!a && BERT_TYPES.includes(cfg.modelType))) return 'embed';
  if (isPoolingDecoder(a) && (a.endsWith('Model') || existsSync(join(dir, 'modules.json')))) return 'embed';
  return 'generate';
}
