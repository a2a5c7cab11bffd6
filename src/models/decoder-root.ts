import type { ModelWeights } from './weights.ts';

/**
 * Where a decoder's weights sit, and its LM head: under `model.` in a causal LM's checkpoint, under no prefix in one
 * saved from the bare model (Qwen3Model); a vision-language checkpoint keeps its language model under
 * `model.language_model.` (transformers 5 and late 4.x) or `language_model.model.` with the head as
 * `language_model.lm_head` (earlier 4.x files: Gemma 3's, Mistral 3's), its vision tower beside it, unread.
 * `fallback`: the root where no embedding table says (dummy weights).
 */
export function decoderRoot(w: ModelWeights, fallback = 'model.'): { root: string; lmHead: string } {
  const roots = ['model.', 'model.language_model.', 'language_model.model.', ''];
  const root = roots.find((r) => w.has(`${r}embed_tokens.weight`)) ?? fallback;
  return { root, lmHead: root === 'language_model.model.' ? 'language_model.lm_head.weight' : 'lm_head.weight' };
}
