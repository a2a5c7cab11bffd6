import { UserError } from '../util/errors.ts';
import { resolveSamplingParams } from './params.ts';
import type { SamplingParams } from './types.ts';

/** What a request is checked against: the model's vocabulary and length, the step's capacity and the KV cache. */
export interface AdmissionLimits {
  /** The model's vocabulary: the rows of its embedding (a padded vocabulary has more than the tokenizer). */
  vocabSize: number;
  maxModelLen: number;
  numBlocks: number;
  blockSize: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  /** Sampling defaults of the model (generation_config.json), under the request's own values. */
  samplingDefaults?: Partial<SamplingParams>;
  /** Most logprobs (and prompt logprobs) a request may ask for: --max-logprobs, the vocabulary for -1. */
  maxLogprobs: number;
}

/** A request that passed every check: its prompt ids and complete sampling parameters. */
export interface Admitted {
  promptIds: number[];
  params: SamplingParams;
}

/**
 * Every check a request goes through, once, before it is queued: sampling parameters, token ids against the
 * model's vocabulary, and whether it could ever run (model length, step capacity, the whole KV cache). Throws a
 * UserError naming the field.
 */
export function admit(prompt: readonly number[], given: Partial<SamplingParams>, limits: AdmissionLimits): Admitted {
  const resolved = resolveSamplingParams(given, limits.samplingDefaults);
  const promptIds = [...prompt];
  if (promptIds.length === 0) throw new UserError('the prompt is empty (expected at least one token)', 'prompt');
  const vocab = limits.vocabSize;
  const outside = (ids: readonly number[]) => ids.find((t) => !(Number.isInteger(t) && t >= 0 && t < vocab));
  const bad = outside(promptIds);
  if (bad !== undefined) {
    throw new UserError(`prompt token id ${bad} is outside the vocabulary (0..${vocab - 1})`, 'prompt');
  }
  // Keys as written ("02" would be token 2 twice over once min_tokens adds its own entry).
  const oddKey = Object.keys(resolved.logitBias).find((k) => String(Number(k)) !== k);
  if (oddKey !== undefined) {
    throw new UserError(`logit_bias key "${oddKey}" is not a token id (expected 0..${vocab - 1})`, 'logit_bias');
  }
  const badBias = outside(Object.keys(resolved.logitBias).map(Number));
  if (badBias !== undefined) {
    throw new UserError(`logit_bias token id ${badBias} is outside the vocabulary (0..${vocab - 1})`, 'logit_bias');
  }
  const badAllowed = resolved.allowedTokenIds && outside(resolved.allowedTokenIds);
  if (badAllowed !== undefined && badAllowed !== null) {
    throw new UserError(
      `allowed_token_ids: ${badAllowed} is outside the vocabulary (0..${vocab - 1})`,
      'allowed_token_ids',
    );
  }
  const badWord = outside(resolved.badWords.flat());
  if (badWord !== undefined) {
    throw new UserError(`bad_words: token id ${badWord} is outside the vocabulary (0..${vocab - 1})`, 'bad_words');
  }
  const badStop = outside(resolved.stopTokenIds);
  if (badStop !== undefined) {
    throw new UserError(`stop_token_ids: ${badStop} is outside the vocabulary (0..${vocab - 1})`, 'stop_token_ids');
  }
  for (const [field, what, asked] of [
    ['logprobs', 'logprobs', resolved.logprobs],
    ['prompt_logprobs', 'prompt logprobs', resolved.promptLogprobs],
  ] as const) {
    if (asked !== null && asked > limits.maxLogprobs) {
      throw new UserError(`${asked} ${what} a token asked for; --max-logprobs allows ${limits.maxLogprobs}`, field);
    }
  }
  checkContextLength(promptIds.length, resolved.maxTokens, limits.maxModelLen);
  const params = {
    ...resolved,
    maxTokens: resolved.maxTokens ?? defaultMaxTokens(limits, promptIds.length, resolved.bestOf),
  };
  checkCapacity(limits, promptIds.length, params, resolved.maxTokens !== undefined);
  return { promptIds, params };
}

/**
 * Refuses a prompt that leaves no room for one generated token, or an explicit max_tokens that overflows the
 * context: the one context-length check (Ollama's num_ctx uses it with its own, smaller length).
 */
export function checkContextLength(promptLen: number, maxTokens: number | undefined, contextLength: number): void {
  const code = 'context_length_exceeded';
  if (promptLen >= contextLength) {
    throw new UserError(
      `the prompt is ${promptLen} tokens, but the model's context length is ${contextLength} tokens`,
      'prompt',
      code,
    );
  }
  if (maxTokens !== undefined && promptLen + maxTokens > contextLength) {
    throw new UserError(
      `this model's context length is ${contextLength} tokens, but ${promptLen + maxTokens} were requested ` +
        `(${promptLen} in the prompt, ${maxTokens} for the completion)`,
      'max_tokens',
      code,
    );
  }
}

/**
 * Refuses, before it is tokenized, a text that cannot fit: at most `maxCharsPerToken` characters per token, it needs
 * more tokens than the context leaves for a prompt. With no known bound nothing is refused here.
 */
export function checkTextLength(
  chars: number,
  contextLength: number,
  maxCharsPerToken: number | null | undefined,
): void {
  if (!maxCharsPerToken) return;
  const limit = (contextLength - 1) * maxCharsPerToken;
  if (chars > limit) {
    throw new UserError(
      `the prompt is ${chars} characters, more than the ${limit} that can fit in the model's context length of ` +
        `${contextLength} tokens (a token stands for at most ${maxCharsPerToken} characters)`,
      'prompt',
      'context_length_exceeded',
    );
  }
}

/** Until the model length or the request's share of the KV cache is full. */
function defaultMaxTokens(limits: AdmissionLimits, promptLen: number, width: number): number {
  const perSeq = Math.floor(limits.numBlocks / width) * limits.blockSize;
  return Math.max(1, Math.min(limits.maxModelLen, perSeq) - promptLen);
}

/** Refuses a request that could never run: wider than one step, or more blocks than the whole cache. */
function checkCapacity(limits: AdmissionLimits, promptLen: number, p: SamplingParams, maxTokensGiven: boolean): void {
  const { maxNumSeqs, maxNumBatchedTokens, numBlocks, blockSize } = limits;
  if (p.bestOf > Math.min(maxNumSeqs, maxNumBatchedTokens)) {
    throw new UserError(
      `best_of / beam width ${p.bestOf} exceeds what one step can run (max-num-seqs ${maxNumSeqs}, max-num-batched-tokens ${maxNumBatchedTokens})`,
      'best_of',
    );
  }
  // Each of the bestOf sequences may have to be recomputed on its own after a preemption.
  const need = p.bestOf * Math.ceil((promptLen + p.maxTokens) / blockSize);
  if (need > numBlocks) {
    throw new UserError(
      `prompt (${promptLen} tokens) + max_tokens (${p.maxTokens}) needs ${need} KV blocks${p.bestOf > 1 ? ` for ${p.bestOf} sequences` : ''}, but the whole KV cache has ${numBlocks} blocks of ${blockSize} tokens (raise --kv-cache-memory)`,
      maxTokensGiven ? 'max_tokens' : 'prompt',
    );
  }
}
