/** How n-gram prompt lookup proposes draft tokens (vLLM's `ngram` method). */
export interface NgramSettings {
  /** Shortest suffix that may match (at least 1). */
  min: number;
  /** Longest suffix tried first. */
  max: number;
}

/**
 * Prompt lookup decoding: the last n tokens (n from `max` down to `min`) are looked up earlier in the prompt and
 * output so far; the up to `k` tokens that followed the most recent earlier occurrence are the draft. The most recent
 * occurrence rather than the first, since text being generated repeats what it wrote last more often than what came
 * first. Returns no tokens when no suffix recurs.
 */
export function proposeNgram(tokens: readonly number[], k: number, ngram: NgramSettings): number[] {
  const len = tokens.length;
  if (k <= 0) return [];
  for (let n = Math.min(ngram.max, len - 1); n >= ngram.min; n--) {
    // Candidate starts: every earlier window of n tokens, newest first (the suffix itself excluded).
    for (let start = len - n - 1; start >= 0; start--) {
      let match = true;
      for (let j = 0; j < n; j++) {
        if (tokens[start + j] !== tokens[len - n + j]) {
          match = false;
          break;
        }
      }
      if (match) return tokens.slice(start + n, Math.min(start + n + k, len));
    }
  }
  return [];
}
