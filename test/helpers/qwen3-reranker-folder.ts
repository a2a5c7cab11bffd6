import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The entries tiny-qwen3's vocabulary calls "yes" and "no" in `qwen3RerankerFiles`: its tiny vocabulary has neither
 * word, so two entries no merge uses ("#" and "$") are renamed, which leaves every merge and the golden prompts' ids
 * (none holds either) as they were.
 */
export const [RERANK_YES, RERANK_NO] = [5, 6];

/**
 * tiny-qwen3's config.json and tokenizer.json as an unconverted Qwen3-Reranker folder's (told by `_name_or_path`, with
 * "yes" and "no" in its vocabulary), for `FolderVariants.withFiles`.
 */
export function qwen3RerankerFiles(tinyQwen3: string): Record<string, Record<string, unknown>> {
  const read = (f: string) => JSON.parse(readFileSync(join(tinyQwen3, f), 'utf8')) as Record<string, unknown>;
  const tokenizer = read('tokenizer.json');
  const model = tokenizer.model as { vocab: Record<string, number> };
  const rename = (k: string, id: number) => (id === RERANK_YES ? 'yes' : id === RERANK_NO ? 'no' : k);
  const vocab = Object.fromEntries(Object.entries(model.vocab).map(([k, id]) => [rename(k, id), id]));
  return {
    'config.json': { ...read('config.json'), _name_or_path: 'Qwen/Qwen3-Reranker-0.6B' },
    'tokenizer.json': { ...tokenizer, model: { ...model, vocab } },
  };
}
