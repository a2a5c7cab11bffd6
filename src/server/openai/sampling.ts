import type { SamplingParams } from '../../engine/types.ts';
import type { TextTokenizer } from '../../loader/tokenizer.ts';
import { samplingFrom } from '../../primitives/sampling-names.ts';
import { badRequest } from '../errors.ts';
import type { ChatRequest, CompletionRequest } from './schemas.ts';

/**
 * The sampling parameters of an OpenAI request, in the engine's terms (unset fields keep engine defaults). The
 * engine checks them against the model (token ids, lengths); only what is about the HTTP exchange is checked here.
 */
export function samplingParams(
  body: ChatRequest | CompletionRequest,
  logprobs: number | null,
  tokenizer: Pick<TextTokenizer, 'encode'>,
): Partial<SamplingParams> {
  const n = body.n ?? 1;
  if (body.stream && (body.best_of ?? n) > n) throw badRequest('best_of greater than n cannot be streamed', 'best_of');
  if (body.stream && body.prompt_logprobs != null) {
    throw badRequest('prompt_logprobs are not available when stream is true', 'prompt_logprobs');
  }
  return { ...samplingFrom('openai', body), logprobs, badWords: badWordIds(body.bad_words ?? [], tokenizer) };
}

/**
 * vLLM's bad_words as token sequences: each word as written and after a space (how it reads mid-text), without
 * special tokens, once each.
 */
function badWordIds(words: readonly string[], tokenizer: Pick<TextTokenizer, 'encode'>): number[][] {
  const out = new Map<string, number[]>();
  for (const word of words) {
    for (const text of [word.trimStart(), ` ${word.trimStart()}`]) {
      const ids = tokenizer.encode(text, { addSpecialTokens: false });
      if (ids.length > 0) out.set(ids.join(','), ids);
    }
  }
  return [...out.values()];
}
