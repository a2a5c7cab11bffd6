import type { SamplingParams } from '../../engine/types.ts';
import { badRequest } from '../errors.ts';
import type { ChatRequest, CompletionRequest } from './schemas.ts';

/** logit_bias keys are token ids written as strings; each must be a token of this vocabulary. */
export function parseLogitBias(
  bias: Record<string, number> | null | undefined,
  vocabSize: number,
): Record<number, number> {
  const out: Record<number, number> = {};
  for (const [key, value] of Object.entries(bias ?? {})) {
    const id = Number(key);
    if (!/^\d+$/.test(key) || id >= vocabSize) {
      throw badRequest(
        `logit_bias: "${key}" is not a token id of this model (expected 0..${vocabSize - 1})`,
        'logit_bias',
      );
    }
    out[id] = value;
  }
  return out;
}

/** The sampling parameters of an OpenAI request, in the engine's terms (unset fields keep engine defaults). */
export function samplingParams(
  body: ChatRequest | CompletionRequest,
  maxTokens: number | undefined,
  logprobs: number | null,
  vocabSize: number,
): Partial<SamplingParams> {
  const n = body.n ?? 1;
  const bestOf = body.best_of ?? n;
  if (bestOf < n) throw badRequest(`best_of (${bestOf}) must be at least n (${n})`, 'best_of');
  if (body.stream && bestOf > n) throw badRequest('best_of greater than n cannot be streamed', 'best_of');
  if (maxTokens !== undefined && (body.min_tokens ?? 0) > maxTokens) {
    throw badRequest(`min_tokens (${body.min_tokens}) is more than max_tokens (${maxTokens})`, 'min_tokens');
  }
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
  if (body.logit_bias) p.logitBias = parseLogitBias(body.logit_bias, vocabSize);
  for (const id of p.stopTokenIds ?? []) {
    if (id >= vocabSize) throw badRequest(`stop_token_ids: ${id} is not a token id of this model`, 'stop_token_ids');
  }
  return p;
}
