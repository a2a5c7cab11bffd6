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

/**
 * Decoders that pool with causal attention from the last token: embedders (Qwen3-Embedding, e5-mistral) and
 * Qwen3-Reranker (qwen3-reranker.ts), converted or not.
 */
export const POOLING_DECODERS = [
  'Qwen3Model',
  'Qwen3ForCausalLM',
  'Qwen3ForSequenceClassification',
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
 * everything else generates. A GGUF file says it pools by its pooling type (gguf/config.ts), and a Qwen3-Reranker
 * folder is given rank pooling as its GGUF would be (qwen3-reranker.ts): rank scores, the others embed.
 */
export function modelTask(dir: string, cfg: ModelConfig): ModelTask {
  const pooling = cfg.raw.pagoda_pooling_type;
  if (pooling !== undefined) return pooling === 'rank' ? 'score' : 'embed';
  const a = cfg.architecture;
  if (BERT_SCORE.includes(a)) return 'score';
  if (BERT_EMBED.includes(a) || (!a && BERT_TYPES.includes(cfg.modelType))) return 'embed';
  if (isPoolingDecoder(a) && (a.endsWith('Model') || existsSync(join(dir, 'modules.json')))) return 'embed';
  return 'generate';
}
