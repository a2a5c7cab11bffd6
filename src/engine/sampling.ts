import type { Rng } from './sequence.ts';
import type { SamplingParams } from './types.ts';

/** Below this temperature sampling is greedy (vLLM's epsilon). */
const GREEDY_EPS = 1e-5;

export function isGreedy(p: SamplingParams): boolean {
  return p.temperature < GREEDY_EPS;
}

/** What the logits processors need to know about one sequence. */
export interface TokenHistory {
  promptIds: readonly number[];
  outputIds: readonly number[];
  /** Tokens that end generation (EOS unless ignore_eos, plus stop_token_ids): masked until min_tokens. */
  stopIds: readonly number[];
}

/** Each request's allowed_token_ids as a bitmask (bit i of word i >> 5; tokens past its words are not allowed), made once. */
const allowedMasks = new WeakMap<readonly number[], Int32Array>();

export function allowedTokenMask(ids: readonly number[]): Int32Array {
  let mask = allowedMasks.get(ids);
  if (!mask) {
    mask = new Int32Array((ids.reduce((a, b) => Math.max(a, b), 0) >> 5) + 1);
    for (const id of ids) mask[id >> 5]! |= 1 << (id & 31);
    allowedMasks.set(ids, mask);
  }
  return mask;
}

/** The tokens `badWords` bans after `output`: each word's last token where the output ends with the rest of it. */
export function bannedTokens(badWords: readonly (readonly number[])[], output: readonly number[]): number[] {
  const banned: number[] = [];
  for (const word of badWords) {
    const rest = word.length - 1;
    if (rest > output.length) continue;
    let ends = true;
    for (let i = 0; i < rest && ends; i++) ends = output[output.length - rest + i] === word[i];
    if (ends) banned.push(word[rest]!);
  }
  return banned;
}

/**
 * The tokens the penalties act on, with how often each counts for frequency and presence (0 = repetition only):
 * vLLM's rule (every prompt and output token for repetition, the output's counts), or with a repeat_last_n window
 * llama.cpp's (the window's tokens and their counts there, for all three). One list for the CPU and device samplers.
 */
export function penaltyTokens(p: SamplingParams, h: TokenHistory): { ids: number[]; counts: number[] } {
  const counts = new Map<number, number>();
  const window = p.repeatLastN;
  if (window === null) {
    if (p.repetitionPenalty !== 1) for (const id of h.promptIds) counts.set(id, 0);
    for (const id of h.outputIds) counts.set(id, (counts.get(id) ?? 0) + 1);
  } else {
    const total = h.promptIds.length + h.outputIds.length;
    const first = window < 0 ? 0 : Math.max(0, total - window);
    for (let i = first; i < total; i++) {
      const id = i < h.promptIds.length ? h.promptIds[i]! : h.outputIds[i - h.promptIds.length]!;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  return { ids: [...counts.keys()], counts: [...counts.values()] };
}

/** Whether any penalty changes the logits. */
export function penalizes(p: SamplingParams): boolean {
  return p.repeatLastN !== 0 && (p.repetitionPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0);
}

/**
 * The logits processors that change the distribution itself, in vLLM's order: logit_bias, allowed_token_ids,
 * bad_words, min_tokens, then the repetition, frequency and presence penalties (`penaltyTokens`). In place.
 */
export function applyLogitsProcessors(logits: Float32Array, p: SamplingParams, h: TokenHistory): void {
  for (const [id, bias] of Object.entries(p.logitBias)) {
    const i = Number(id);
    if (i >= 0 && i < logits.length) logits[i]! += bias;
  }
  if (p.allowedTokenIds) {
    const mask = allowedTokenMask(p.allowedTokenIds);
    for (let i = 0; i < logits.length; i++) {
      if (!((mask[i >> 5]! >>> (i & 31)) & 1)) logits[i] = Number.NEGATIVE_INFINITY;
    }
  }
  for (const id of bannedTokens(p.badWords, h.outputIds)) logits[id] = Number.NEGATIVE_INFINITY;
  if (h.outputIds.length < p.minTokens) for (const id of h.stopIds) logits[id] = Number.NEGATIVE_INFINITY;
  if (!penalizes(p)) return;
  const { ids, counts } = penaltyTokens(p, h);
  ids.forEach((id, j) => {
    const v = logits[id]!;
    if (p.repetitionPenalty !== 1) logits[id] = v > 0 ? v / p.repetitionPenalty : v * p.repetitionPenalty;
    const c = counts[j]!;
    if (c > 0) logits[id]! -= p.frequencyPenalty * c + p.presencePenalty;
  });
}

/** Index of the largest logit (the first one on ties). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/**
 * The distribution a token is drawn from after temperature, min_p, top_k, typical_p and top_p (vLLM's order, with
 * typical_p before top_p as llama.cpp has it; min_p and top_k commute since both keep the most likely token), as
 * candidate ids with their normalized probabilities. Candidates are in vocabulary order, or in the order the last
 * filter that had to rank them left.
 */
export function samplingDistribution(logits: Float32Array, p: SamplingParams): { ids: number[]; probs: number[] } {
  const t = p.temperature;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  // Relative probabilities exp((l - max) / t); min_p keeps those at least min_p times the most likely.
  const keep = (i: number) => {
    const w = Math.exp((logits[i]! - max) / t);
    return w > 0 && w >= p.minP ? w : 0;
  };
  let ids: number[] = [];
  let probs: number[] = [];
  if (p.topK > 0 && p.topK < logits.length) {
    for (const { id } of topEntries(logits, p.topK)) {
      const w = keep(id);
      if (w > 0) {
        ids.push(id);
        probs.push(w);
      }
    }
  } else {
    for (let i = 0; i < logits.length; i++) {
      const w = keep(i);
      if (w > 0) {
        ids.push(i);
        probs.push(w);
      }
    }
    if (p.topP < 1 && p.typicalP >= 1) ({ ids, probs } = mostLikelyFirst(ids, probs));
  }
  if (p.typicalP < 1) ({ ids, probs } = locallyTypical(ids, probs, p.typicalP));
  if (p.topP < 1) {
    if (p.typicalP < 1) ({ ids, probs } = mostLikelyFirst(ids, probs));
    let total = 0;
    for (const w of probs) total += w;
    // Smallest prefix whose mass reaches top_p (the token that crosses it is kept).
    let cum = 0;
    for (let j = 0; j < probs.length; j++) {
      cum += probs[j]! / total;
      if (cum >= p.topP) {
        ids.length = probs.length = j + 1;
        break;
      }
    }
  }
  let sum = 0;
  for (const w of probs) sum += w;
  return { ids, probs: probs.map((w) => w / sum) };
}

/** Candidates reordered most likely first (ties: lower id first). */
function mostLikelyFirst(ids: number[], probs: number[]): { ids: number[]; probs: number[] } {
  const order = ids.map((_, j) => j).sort((a, b) => probs[b]! - probs[a]! || ids[a]! - ids[b]!);
  return { ids: order.map((j) => ids[j]!), probs: order.map((j) => probs[j]!) };
}

/**
 * Locally typical sampling (Meister et al.): the candidates whose surprise -log p is nearest the distribution's
 * entropy, nearest first, until their mass reaches `mass` (the one that crosses it is kept). `probs` need not sum to 1.
 */
function locallyTypical(ids: number[], probs: number[], mass: number): { ids: number[]; probs: number[] } {
  let total = 0;
  for (const w of probs) total += w;
  let entropy = 0;
  for (const w of probs) entropy -= (w / total) * Math.log(w / total);
  const distance = probs.map((w) => Math.abs(-Math.log(w / total) - entropy));
  const order = ids.map((_, j) => j).sort((a, b) => distance[a]! - distance[b]! || ids[a]! - ids[b]!);
  let cum = 0;
  let keep = order.length;
  for (let j = 0; j < order.length; j++) {
    cum += probs[order[j]!]! / total;
    if (cum >= mass) {
      keep = j + 1;
      break;
    }
  }
  const kept = order.slice(0, keep);
  return { ids: kept.map((j) => ids[j]!), probs: kept.map((j) => probs[j]!) };
}

/**
 * Greedy argmax at temperature 0, otherwise one draw with the sequence's own RNG: from `samplingDistribution` when
 * a filter is set, else straight from the tempered softmax (same draw, no candidate arrays).
 */
export function sampleToken(logits: Float32Array, p: SamplingParams, rng: Rng): number {
  if (isGreedy(p)) return argmax(logits);
  const u = rng.next();
  if ((p.topK <= 0 || p.topK >= logits.length) && p.topP >= 1 && p.minP <= 0 && p.typicalP >= 1) {
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i]! - max) / p.temperature);
    const target = u * sum;
    let cum = 0;
    let last = 0;
    for (let i = 0; i < logits.length; i++) {
      const w = Math.exp((logits[i]! - max) / p.temperature);
      if (w === 0) continue;
      cum += w;
      last = i;
      if (target < cum) return i;
    }
    return last;
  }
  const { ids, probs } = samplingDistribution(logits, p);
  let cum = 0;
  for (let j = 0; j < ids.length; j++) {
    cum += probs[j]!;
    if (u < cum) return ids[j]!;
  }
  return ids[ids.length - 1]!;
}

/** log-softmax of a logits row (accumulated in float64). */
export function logSoftmax(logits: Float32Array): Float32Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
  return out;
}

/** The k largest entries, best first (ties: lower id first). */
export function topEntries(values: Float32Array, k: number): { id: number; value: number }[] {
  const top: { id: number; value: number }[] = [];
  if (k <= 0) return top;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (top.length === k && v <= top[k - 1]!.value) continue;
    let j = top.length < k ? top.length : k - 1;
    while (j > 0 && top[j - 1]!.value < v) j--;
    top.splice(j, 0, { id: i, value: v });
    if (top.length > k) top.pop();
  }
  return top;
}
