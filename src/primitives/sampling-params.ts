/** What a request asks of sampling: the engine's terms, which every API's names map to. */
export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** 0 or -1 = disabled. */
  topK: number;
  minP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** token id -> bias added to its logit. */
  logitBias: Record<number, number>;
  /** Only these tokens may be drawn (vLLM's allowed_token_ids); null = any. */
  allowedTokenIds: number[] | null;
  /** Token sequences never generated: a word's last token is banned where the output ends with the rest of it. */
  badWords: number[][];
  seed: number | null;
  stop: string[];
  /** A matched stop string stays at the end of the text (vLLM's include_stop_str_in_output). */
  includeStopStr: boolean;
  stopTokenIds: number[];
  ignoreEos: boolean;
  maxTokens: number;
  minTokens: number;
  /** Completions returned. */
  n: number;
  /** Candidates generated to pick the n best from (by cumulative logprob); >= n. */
  bestOf: number;
  useBeamSearch: boolean;
  lengthPenalty: number;
  /**
   * Return this many top logprobs per generated token (0 = just the chosen token's); null = none. Logprobs are the
   * raw model distribution (log-softmax of the logits before bias, penalties, temperature and top-k/p), as vLLM's default.
   */
  logprobs: number | null;
  promptLogprobs: number | null;
}
