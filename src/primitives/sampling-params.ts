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
  /**
   * Ollama's repeat_last_n: the three penalties see only the last n tokens of prompt and output and count every
   * occurrence there (llama.cpp's window; -1 = all of them, 0 = no penalty). null = vLLM's rule: repetition over the
   * prompt and the output, frequency and presence over the output's counts.
   */
  repeatLastN: number | null;
  /** Locally typical sampling's mass (Ollama's typical_p); 1 = off. */
  typicalP: number;
  /**
   * Mirostat (Ollama's mirostat: 1 or 2; 0 = off): a feedback loop holds each token's surprise near mirostatTau,
   * learning at rate mirostatEta, in place of top_k, top_p, min_p and typical_p.
   */
  mirostat: number;
  mirostatTau: number;
  mirostatEta: number;
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
