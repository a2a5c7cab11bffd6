import { argmax, isGreedy } from './sampling.ts';
import type { Rng } from './sequence.ts';
import type { SamplingParams } from './types.ts';

/** How many of the most likely tokens version 1 estimates the distribution's Zipf exponent from (the paper's m). */
const ZIPF_SAMPLE = 100;

/** A sequence's mirostat state: the surprise ceiling mu (null until its first draw, then 2 tau) and its RNG. */
export interface MirostatState {
  mirostatMu: number | null;
  rng: Rng;
}

/**
 * One mirostat draw (Basu et al.) after the temperature, as Ollama's runner does it, updating the sequence's mu by
 * eta times the drawn token's surprise error against tau. Version 1 keeps the k most likely tokens, k from the Zipf
 * exponent estimated on the top ZIPF_SAMPLE; version 2 keeps the most likely tokens whose surprise is at most mu.
 * Greedy at temperature 0.
 */
export function mirostatToken(logits: Float32Array, p: SamplingParams, state: MirostatState): number {
  if (isGreedy(p)) return argmax(logits);
  const mu = state.mirostatMu ?? 2 * p.mirostatTau;
  const probs = softmax(logits, p.temperature);
  // Descending, zeros left out: a masked token is no candidate and would break the exponent's logs.
  const sorted = probs.filter((x) => x > 0).sort();
  sorted.reverse();
  const keep = p.mirostat === 1 ? zipfTopK(sorted, mu, logits.length) : surpriseCut(sorted, mu);
  const floor = sorted[keep - 1]!;
  const ids: number[] = [];
  let total = 0;
  for (let i = 0; i < probs.length && ids.length < keep; i++) {
    if (probs[i]! > floor) ids.push(i);
  }
  for (let i = 0; i < probs.length && ids.length < keep; i++) if (probs[i] === floor) ids.push(i);
  for (const id of ids) total += probs[id]!;
  const target = state.rng.next() * total;
  let token = ids[ids.length - 1]!;
  let cum = 0;
  for (const id of ids) {
    cum += probs[id]!;
    if (target < cum) {
      token = id;
      break;
    }
  }
  const surprise = -Math.log2(probs[token]! / total);
  state.mirostatMu = mu - p.mirostatEta * (surprise - p.mirostatTau);
  return token;
}

/** softmax(logits / temperature) in float64. */
function softmax(logits: Float32Array, temperature: number): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of logits) if (v > max) max = v;
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp((logits[i]! - max) / temperature);
  for (let i = 0; i < out.length; i++) out[i]! /= sum;
  return out;
}

/** Version 1's k: the top-k whose expected surprise is mu under a Zipf law fitted to the most likely tokens. */
function zipfTopK(sorted: Float64Array, mu: number, vocab: number): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ZIPF_SAMPLE - 1 && i < sorted.length - 1; i++) {
    const t = Math.log((i + 2) / (i + 1));
    num += t * Math.log(sorted[i]! / sorted[i + 1]!);
    den += t * t;
  }
  const s = num / den;
  const eps = s - 1;
  const k = ((eps * 2 ** mu) / (1 - vocab ** -eps)) ** (1 / s);
  // One candidate (no exponent to fit) or a flat top (k overflows) keep what the fit cannot narrow.
  if (!Number.isFinite(k)) return sorted.length;
  return Math.min(sorted.length, Math.max(1, Math.floor(k)));
}

/** Version 2's cut: how many of the most likely tokens have surprise -log2 p at most mu (at least one). */
function surpriseCut(sorted: Float64Array, mu: number): number {
  let n = 0;
  while (n < sorted.length && -Math.log2(sorted[n]!) <= mu) n++;
  return Math.max(1, n);
}
