import type { GrammarSpec } from '../grammar/spec.ts';
/** The engine's public API: what the CLI and the HTTP server submit and receive. */

import type { SamplingParams } from '../primitives/sampling-params.ts';

export type { SamplingParams };

export interface TokenLogprob {
  tokenId: number;
  token: string;
  logprob: number;
  /** The token's place among the vocabulary by logprob, 1 for the most likely (vLLM's rank). */
  rank?: number;
  /** The top candidates at this step, best first. */
  top: { tokenId: number; token: string; logprob: number }[];
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface GenerateRequest {
  /** Assigned by the engine when absent. */
  id?: string;
  /** Text (tokenized by the engine) or token ids. */
  prompt: string | number[];
  params?: Partial<SamplingParams>;
  /** Lower runs first when the scheduler uses priority order. */
  priority?: number;
  /** Structured output: every completion matches this (compiled off the event loop before the request queues). */
  grammar?: GrammarSpec;
  /** False keeps special tokens in the text (default true): tool-call markers are special tokens in some models. */
  skipSpecialTokens?: boolean;
  /**
   * KV compression budget of this request (tokens, or a fraction 0 < f < 1 of the prompt) over the engine's; needs an
   * engine with KV compression. Applied only to prompts longer than the budget.
   */
  kvBudget?: number;
  /**
   * Salts the prefix cache (vLLM's cache_salt): this request's blocks are found only by requests with the same salt,
   * so a tenant cannot time another's cached prompts.
   */
  cacheSalt?: string;
}

/** One completion's progress in an incremental output. Text and token ids are deltas since the last output. */
export interface CompletionDelta {
  index: number;
  text: string;
  tokenIds: number[];
  logprobs: TokenLogprob[] | null;
  finishReason: FinishReason | null;
  /** The stop string or stop token id that ended it, when one did. */
  stopReason: string | number | null;
}

export interface RequestMetrics {
  arrivalTime: number;
  firstScheduledTime: number | null;
  firstTokenTime: number | null;
  finishedTime: number | null;
  promptTokens: number;
  /** Prompt tokens served from the prefix cache instead of computed. */
  cachedPromptTokens: number;
  generationTokens: number;
}

export interface RequestOutput {
  requestId: string;
  promptTokenIds: number[];
  /** Sent once, in the first output after the prompt is computed (entry 0 is null); null in the others. */
  promptLogprobs: (TokenLogprob | null)[] | null;
  outputs: CompletionDelta[];
  finished: boolean;
  metrics: RequestMetrics;
}

/** Counters for /metrics, logs and tests. */
export interface EngineStats {
  running: number;
  waiting: number;
  totalBlocks: number;
  freeBlocks: number;
  blockSize: number;
  preemptions: number;
  promptTokens: number;
  /** Prompt tokens actually run through the model (prefix-cache hits excluded, recomputes included). */
  promptTokensComputed: number;
  generationTokens: number;
  /** Prompt tokens found in the prefix cache / prompt tokens looked up. */
  prefixCacheHits: number;
  prefixCacheQueries: number;
  steps: number;
  /** Steps run, by the tokens each computed (a live view; `steps` is their sum). */
  stepTokens: ReadonlyMap<number, number>;
  /** KV blocks KV compression has freed so far. */
  kvBlocksSaved: number;
  /** Speculative decoding: draft tokens proposed and verified / accepted by the target (cumulative). */
  specDraftTokens: number;
  specAcceptedTokens: number;
}

/** How request text is tokenized: with the tokenizer's special tokens (default), and whatever its length. */
export interface EncodeOptions {
  addSpecialTokens?: boolean;
  anyLength?: boolean;
}

export interface EngineApi {
  /**
   * Tokenizes request text off the event loop (long texts in a worker), after refusing a text too long to fit the
   * context (a UserError naming both numbers, without tokenizing) unless `anyLength` (a count of tokens, not a
   * prompt). `addSpecialTokens` defaults to true.
   */
  encode(text: string, opts?: EncodeOptions): Promise<number[]>;
  /** Streams incremental outputs until finished; breaking out of the loop aborts the request. */
  generate(request: GenerateRequest): AsyncIterable<RequestOutput>;
  abort(requestId: string): void;
  stats(): EngineStats;
  /** Stops the step loop once in-flight requests finish (or at once with `force`). */
  shutdown(force?: boolean): Promise<void>;
}
