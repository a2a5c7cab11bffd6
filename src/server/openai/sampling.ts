import type { SamplingParams } from '../../engine/types.ts';
import { badRequest } from '../errors.ts';
import type { ChatRequest, CompletionRequest } from './schemas.ts';

/**
 * The sampling parameters of an OpenAI request, in the engine's terms (unset fields keep engine defaults). The
 * engine checks them against the model (token ids, lengths); only what is about the HTTP exchange is checked here.
 */
export function samplingParams(
  body: ChatRequest | CompletionRequest,
  maxTokens: number | undefined,
  logprobs: number | null,
): Partial<SamplingParams> {
  const n = body.n ?? 1;
  const bestOf = body.best_of ?? n;
  if (body.stream && bestOf > n) throw badRequest('best_of greater than n cannot be streamed', 'best_of');
  const p: Partial<SamplingParams> = { maxTokens, n, bestOf, logprobs };
  const set = <K extends keyof SamplingParams>(key: K, v: SamplingParams[K] | null | undefined) => {
    if (v !== null && v !== undefined) p[key] = v;
  };
  set('temperature', body.temperature);
  set('topP', body.top_p);
  set('topK', body.top_k);
  set('minP', body.min_p);
  set('repetitionPenalty', body.repetition_penalty);
  set('presencePenalty', body.presence_penalty);
  set('frequencyPenalty', body.frequency_penalty);
  set('seed', body.seed);
  set('ignoreEos', body.ignore_eos);
  set('minTokens', body.min_tokens);
  set('useBeamSearch', body.use_beam_search);
  set('lengthPenalty', body.length_penalty);
  set('stopTokenIds', body.stop_token_ids ?? undefined);
  if (body.stop !== null && body.stop !== undefined) p.stop = typeof body.stop === 'string' ? [body.stop] : body.stop;
  // Keys stay as written: the engine refuses any that is not a token id of the model.
  if (body.logit_bias) p.logitBias = body.logit_bias as Record<number, number>;
  return p;
}
