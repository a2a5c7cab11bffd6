import type { TextTokenizer } from '../loader/tokenizer.ts';
import { badRequest } from './errors.ts';
import { encodePrompt } from './generation.ts';
import type { LoadedModel } from './models.ts';

/**
 * Code models' fill-in-the-middle markers (before the prefix, before the suffix, where the middle goes), by the
 * vocabulary's names for them: Qwen2.5-Coder and CodeGemma, StarCoder, DeepSeek-Coder, CodeLlama.
 */
const FIM_MARKERS = [
  ['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>'],
  ['<fim_prefix>', '<fim_suffix>', '<fim_middle>'],
  ['<｜fim▁begin｜>', '<｜fim▁hole｜>', '<｜fim▁end｜>'],
  ['▁<PRE>', '▁<SUF>', '▁<MID>'],
] as const;

/** The vocabulary's three fill-in-the-middle token ids, or null when it has no complete set. */
export function fimTokenIds(tokenizer: Pick<TextTokenizer, 'tokenId'>): [number, number, number] | null {
  for (const names of FIM_MARKERS) {
    const ids = names.map((n) => tokenizer.tokenId?.(n) ?? null);
    if (ids.every((id) => id !== null)) return ids as [number, number, number];
  }
  return null;
}

/**
 * The prompt ids that ask `name` for the text between `prefix` and `suffix` (Ollama's `suffix`, OpenAI's legacy
 * completions' `suffix`): a Go template that knows `.Suffix` renders it, as Ollama does; otherwise the vocabulary's
 * markers in prefix-suffix-middle order after the tokenizer's BOS, as llama.cpp's infill builds it. Refused (400,
 * naming `suffix`) for a model with neither.
 */
export async function infillIds(model: LoadedModel, name: string, prefix: string, suffix: string): Promise<number[]> {
  const template = model.chatTemplate;
  if (template?.infill) return encodePrompt(model, template.infill(prefix, suffix), template.addSpecialTokens === true);
  const markers = fimTokenIds(model.tokenizer);
  if (!markers) {
    throw badRequest(
      `suffix: model "${name}" does not support fill-in-the-middle (its template has no .Suffix, and its vocabulary no markers such as <|fim_prefix|>)`,
      'suffix',
    );
  }
  const [pre, suf, mid] = markers;
  const [specials, before, after] = await Promise.all([
    encodePrompt(model, '', true),
    encodePrompt(model, prefix, false),
    encodePrompt(model, suffix, false),
  ]);
  const bos = specials.filter((id) => !model.tokenizer.eosTokenIds.includes(id));
  return [...bos, pre, ...before, suf, ...after, mid];
}
