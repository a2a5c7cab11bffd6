import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { hostRows } from '../primitives/host-tensor.ts';
import { UserError } from '../util/errors.ts';
import type { ModelConfig } from './hf-config.ts';
import type { WeightSource } from './safetensors.ts';
import { loadTokenizer } from './tokenizer.ts';

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
 * A Qwen3-Reranker folder: its config says Qwen3ForCausalLM as any Qwen3 does (or Qwen3ForSequenceClassification once
 * converted, as reward models are too), so it is told by its name, as llama.cpp's converter tells it: a README
 * heading "Qwen3-Reranker…", or the name in the folder's or in `_name_or_path`.
 */
export function isQwen3Reranker(dir: string, raw: Record<string, unknown>): boolean {
  if (raw.model_type !== 'qwen3') return false;
  if (NAME.test(basename(resolve(dir))) || NAME.test(String(raw._name_or_path ?? ''))) return true;
  const readme = join(dir, 'README.md');
  return existsSync(readme) && /^#+\s*qwen3-reranker/im.test(readFileSync(readme, 'utf8'));
}

/**
 * A folder's config with what a rank GGUF of it would say when it is a Qwen3-Reranker: rank pooling and the rerank
 * template (the keys gguf/config.ts writes); other configs come back as they are.
 */
export function withQwen3RerankerKeys(raw: Record<string, unknown>, dir: string): Record<string, unknown> {
  if (!isQwen3Reranker(dir, raw)) return raw;
  return { ...raw, pagoda_pooling_type: 'rank', pagoda_rerank_template: QWEN3_RERANK_TEMPLATE };
}

/**
 * An unconverted Qwen3-Reranker folder's head: its LM head's (or tied embeddings') rows at the vocabulary's "yes" and
 * "no", as float32, read alone from disk. Refused in one line when the vocabulary lacks either.
 */
export function qwen3RerankRows(dir: string, cfg: ModelConfig, source: WeightSource): [Float32Array, Float32Array] {
  const tokenizer = loadTokenizer(dir);
  const ids = QWEN3_RERANK_TOKENS.map((token) => {
    const id = tokenizer.tokenId?.(token) ?? null;
    if (id === null || id >= cfg.vocabSize) {
      throw new UserError(
        `${join(dir, 'tokenizer.json')}: a Qwen3-Reranker needs "${token}" in its vocabulary (the LM head's "yes" and "no" rows are its head); ${id === null ? 'it has none' : `its id ${id} is past the LM head's ${cfg.vocabSize} rows`}`,
      );
    }
    return id;
  });
  const name = source.has('lm_head.weight') || !cfg.tieWordEmbeddings ? 'lm_head.weight' : 'model.embed_tokens.weight';
  if (!source.has(name)) throw new UserError(`${dir}: tensor ${name} is missing (a Qwen3-Reranker's head rows)`);
  const head = source.get(name);
  if (head.shape.length !== 2 || head.shape[0] !== cfg.vocabSize || head.shape[1] !== cfg.hiddenSize) {
    throw new UserError(
      `${dir}: tensor ${name} has shape [${head.shape.join(', ')}], expected [${cfg.vocabSize}, ${cfg.hiddenSize}] from config.json`,
    );
  }
  const [yes, no] = hostRows(head, ids);
  return [yes!, no!];
}
