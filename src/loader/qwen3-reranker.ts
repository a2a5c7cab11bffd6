import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

/**
 * Qwen3-Reranker's input for a query and a document, as Qwen's model card builds it (the default instruction) and as
 * llama.cpp's converter writes it into a rank GGUF (`tokenizer.chat_template.rerank`): a folder and its GGUF score
 * alike. The relevance is the model's next-token choice between "yes" and "no".
 */
export const QWEN3_RERANK_TEMPLATE =
  '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. ' +
  'Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n<Instruct>: Given a web search query, ' +
  'retrieve relevant passages that answer the query\n<Query>: {query}\n<Document>: {document}<|im_end|>\n' +
  '<|im_start|>assistant\n<think>\n\n</think>\n\n';

/** The vocabulary's tokens whose LM head rows make the relevance logit (yes - no). */
export const QWEN3_RERANK_TOKENS = ['yes', 'no'] as const;

const NAME = /qwen3-reranker/i;

/**
 * A Qwen3-Reranker folder: its config says Qwen3ForCausalLM as any Qwen3 does, so it is told as llama.cpp's converter
 * tells it: a README headed "# Qwen3-Reranker…", the name in the folder's or in `_name_or_path`, or a checkpoint
 * converted to Qwen3ForSequenceClassification (its `score` already yes - no).
 */
export function isQwen3Reranker(dir: string, raw: Record<string, unknown>): boolean {
  if (raw.model_type !== 'qwen3') return false;
  const architecture = Array.isArray(raw.architectures) ? String(raw.architectures[0]) : '';
  if (architecture === 'Qwen3ForSequenceClassification') return true;
  if (NAME.test(basename(resolve(dir))) || NAME.test(String(raw._name_or_path ?? ''))) return true;
  const readme = join(dir, 'README.md');
  return existsSync(readme) && /^#\s*qwen3-reranker/im.test(readFileSync(readme, 'utf8'));
}

/**
 * A folder's config with what a rank GGUF of it would say when it is a Qwen3-Reranker: rank pooling and the rerank
 * template (the keys gguf/config.ts writes); other configs come back as they are.
 */
export function withQwen3RerankerKeys(raw: Record<string, unknown>, dir: string): Record<string, unknown> {
  if (!isQwen3Reranker(dir, raw)) return raw;
  return { ...raw, pagoda_pooling_type: 'rank', pagoda_rerank_template: QWEN3_RERANK_TEMPLATE };
}
