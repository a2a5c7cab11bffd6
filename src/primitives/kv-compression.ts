/**
 * SnapKV-style KV cache compression, as a step asks for it: once a sequence's prompt is computed, the last `window`
 * queries of the prompt score every earlier key by the attention they give it (from the prefill's log-sum-exp), and
 * each layer and KV head keeps `budget` entries: the first `SNAPKV.sinks` tokens, the window, and the best-scored rest.
 */
export interface KvCompressionPlan {
  /** The sequence's index in the step; its chunk ends with the prompt's last token. */
  seq: number;
  /** Query rows at the end of the chunk that score the keys (the observation window); always kept. */
  window: number;
  /** Entries every layer and KV head keeps; the sequence's cache holds exactly this many afterwards. */
  budget: number;
}

/** The KV compression methods there are. */
export const KV_COMPRESSION_METHODS = ['snapkv'] as const;
export type KvCompressionMethod = (typeof KV_COMPRESSION_METHODS)[number];

/** An engine's KV compression: the method, and the budget of requests that name none (absent: only those that do). */
export interface KvCompressionConfig {
  method: KvCompressionMethod;
  /** Tokens (an integer >= 1) or a fraction of the prompt (0 < f < 1). */
  budget?: number;
}

export const SNAPKV = {
  /** Observation window (queries) unless the budget or the chunk is smaller. */
  window: 32,
  /** Attention sinks: the first tokens, always kept. */
  sinks: 4,
  /** Scores are max-pooled over this many neighbouring positions (SnapKV's kernel of 7). */
  poolKernel: 7,
} as const;

/**
 * The window a sequence compressed to `budget` entries uses when its final chunk has `chunkLen` tokens: at most half
 * of the budget past the sinks, so small budgets still keep keys chosen by score.
 */
export function snapKvWindow(budget: number, chunkLen: number): number {
  return Math.max(1, Math.min(SNAPKV.window, Math.floor((budget - SNAPKV.sinks) / 2), chunkLen));
}
