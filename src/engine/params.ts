import { UserError } from '../util/errors.ts';
import type { SamplingParams } from './types.ts';

/** Most logprobs a request may ask for unless --max-logprobs says otherwise (vLLM's default max_logprobs). */
export const DEFAULT_MAX_LOGPROBS = 20;

/** vLLM's defaults, except max_tokens, which the engine fills from the room left in the context. */
const DEFAULTS: Omit<SamplingParams, 'maxTokens'> = {
  temperature: 1,
  topP: 1,
  topK: 0,
  minP: 0,
  repetitionPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  repeatLastN: null,
  typicalP: 1,
  mirostat: 0,
  mirostatTau: 5,
  mirostatEta: 0.1,
  logitBias: {},
  allowedTokenIds: null,
  badWords: [],
  seed: null,
  stop: [],
  includeStopStr: false,
  stopTokenIds: [],
  ignoreEos: false,
  minTokens: 0,
  n: 1,
  bestOf: 1,
  useBeamSearch: false,
  lengthPenalty: 1,
  logprobs: null,
  promptLogprobs: null,
};

/**
 * Fills a request's sampling parameters from the model's defaults (generation_config.json) and vLLM's, and checks
 * each value; `maxTokens` stays undefined when nobody set it.
 */
export function resolveSamplingParams(
  given: Partial<SamplingParams>,
  modelDefaults: Partial<SamplingParams> = {},
): Omit<SamplingParams, 'maxTokens'> & { maxTokens?: number } {
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  const p = { ...DEFAULTS, ...modelDefaults, ...defined } as SamplingParams;
  p.bestOf = given.bestOf ?? p.n;
  const check = (ok: boolean, field: string, expected: string, value: unknown) => {
    if (!ok) throw new UserError(`sampling parameter ${field}=${JSON.stringify(value)}: expected ${expected}`, field);
  };
  const int = (v: number) => Number.isInteger(v);
  check(p.temperature >= 0, 'temperature', 'a number >= 0', p.temperature);
  check(p.topP > 0 && p.topP <= 1, 'top_p', 'a number in (0, 1]', p.topP);
  check(int(p.topK) && p.topK >= -1, 'top_k', 'an integer >= -1 (0 or -1 = disabled)', p.topK);
  check(p.minP >= 0 && p.minP <= 1, 'min_p', 'a number in [0, 1]', p.minP);
  check(p.repetitionPenalty > 0, 'repetition_penalty', 'a number > 0', p.repetitionPenalty);
  check(Math.abs(p.presencePenalty) <= 2, 'presence_penalty', 'a number in [-2, 2]', p.presencePenalty);
  check(Math.abs(p.frequencyPenalty) <= 2, 'frequency_penalty', 'a number in [-2, 2]', p.frequencyPenalty);
  const window = p.repeatLastN;
  check(window === null || (int(window) && window >= -1), 'repeat_last_n', 'an integer >= -1', window);
  check(p.typicalP > 0 && p.typicalP <= 1, 'typical_p', 'a number in (0, 1]', p.typicalP);
  check([0, 1, 2].includes(p.mirostat), 'mirostat', '0, 1 or 2', p.mirostat);
  check(p.mirostatTau > 0, 'mirostat_tau', 'a number > 0', p.mirostatTau);
  check(p.mirostatEta >= 0, 'mirostat_eta', 'a number >= 0', p.mirostatEta);
  check(int(p.n) && p.n >= 1, 'n', 'an integer >= 1', p.n);
  check(int(p.bestOf) && p.bestOf >= p.n, 'best_of', `an integer >= n (${p.n})`, p.bestOf);
  if (p.maxTokens !== undefined)
    check(int(p.maxTokens) && p.maxTokens >= 1, 'max_tokens', 'an integer >= 1', p.maxTokens);
  check(int(p.minTokens) && p.minTokens >= 0, 'min_tokens', 'an integer >= 0', p.minTokens);
  if (p.maxTokens !== undefined)
    check(p.minTokens <= p.maxTokens, 'min_tokens', `<= max_tokens (${p.maxTokens})`, p.minTokens);
  check(p.seed === null || int(p.seed), 'seed', 'an integer or null', p.seed);
  // The cap (--max-logprobs) is the engine's: admission checks it.
  const lp = (v: number | null) => v === null || (int(v) && v >= 0);
  check(lp(p.logprobs), 'logprobs', 'null or an integer >= 0', p.logprobs);
  check(lp(p.promptLogprobs), 'prompt_logprobs', 'null or an integer >= 0', p.promptLogprobs);
  check(
    p.stop.every((s) => typeof s === 'string' && s.length > 0),
    'stop',
    'non-empty strings',
    p.stop,
  );
  return p;
}
