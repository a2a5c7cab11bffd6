import type { SamplingRow } from '../../src/backend/backend.ts';
import { seedWords } from '../../src/backend/cuda/sampling.ts';

/** High 32 bits of a 32 x 32-bit product. */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = ((al * bl) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
}

/** Philox4x32-10's first output word, as kernels/sampling.cu computes it. */
export function philox(c0: number, c1: number, k0: number, k1: number): number {
  let c2 = 0;
  let c3 = 0;
  for (let r = 0; r < 10; r++) {
    const h0 = mulhi(0xd2511f53, c0);
    const l0 = Math.imul(0xd2511f53, c0) >>> 0;
    const h1 = mulhi(0xcd9e8d57, c2);
    const l1 = Math.imul(0xcd9e8d57, c2) >>> 0;
    const n0 = (h1 ^ c1 ^ k0) >>> 0;
    const n2 = (h0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = l1;
    c2 = n2;
    c3 = l0;
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return c0;
}

/** The processed logits of one row (bias, penalties) in float64. */
export function processedLogits(logits: ArrayLike<number>, r: SamplingRow): Float64Array {
  const x = Float64Array.from(logits);
  if (r.allowedTokens) {
    for (let i = 0; i < x.length; i++)
      if (!((r.allowedTokens[i >> 5]! >>> (i & 31)) & 1)) x[i] = Number.NEGATIVE_INFINITY;
  }
  for (const [id, v] of Object.entries(r.logitBias ?? {})) x[Number(id)]! += v;
  r.seenTokens?.forEach((id, j) => {
    const c = r.seenCounts?.[j] ?? 0;
    let v = x[id]!;
    if (r.repetitionPenalty !== 1) v = v > 0 ? v / r.repetitionPenalty : v * r.repetitionPenalty;
    x[id] = v - r.frequencyPenalty * c - (c > 0 ? r.presencePenalty : 0);
  });
  return x;
}

/**
 * The CPU twin of the device sampler: which ids survive top-k / top-p / min-p, and each survivor's Gumbel score.
 * Greedy rows (temperature 0) keep every id with score = logit. Ties at a top-k or top-p boundary are all kept.
 */
export function referenceScores(logits: ArrayLike<number>, r: SamplingRow): { kept: boolean[]; score: Float64Array } {
  const x = processedLogits(logits, r);
  const V = x.length;
  const score = new Float64Array(V);
  if (r.temperature <= 0) return { kept: Array(V).fill(true), score: x };
  for (let i = 0; i < V; i++) x[i]! /= r.temperature;
  const order = Array.from(x.keys()).sort((a, b) => x[b]! - x[a]!);
  const max = x[order[0]!]!;
  // vLLM's order: min_p first, then top-k and top-p among the survivors (a prefix of `order`).
  const floor = r.minP > 0 ? max + Math.log(r.minP) : Number.NEGATIVE_INFINITY;
  let survivors = 0;
  while (survivors < V && x[order[survivors]!]! >= floor) survivors++;
  let keep = r.topK > 0 && r.topK < survivors ? r.topK : survivors;
  const kth = x[order[keep - 1]!]!;
  while (keep < survivors && x[order[keep]!] === kth) keep++;
  if (r.topP < 1) {
    let total = 0;
    for (let i = 0; i < keep; i++) total += Math.exp(x[order[i]!]! - max);
    let acc = 0;
    let n = 0;
    while (n < keep && acc < r.topP * total) acc += Math.exp(x[order[n++]!]! - max);
    // Ties with the last kept value are kept too, as the device's threshold search keeps every value >= it.
    while (n < keep && x[order[n]!] === x[order[n - 1]!]) n++;
    keep = n;
  }
  const kept = Array(V).fill(false);
  const [k0, k1] = seedWords(r.seed);
  for (let n = 0; n < keep; n++) {
    const i = order[n]!;
    kept[i] = true;
    const u = ((philox(i, r.step, k0, k1) >>> 9) + 0.5) / 8388608;
    score[i] = x[i]! - Math.log(-Math.log(u));
  }
  return { kept, score };
}

/** The id the device sampler draws for one row: the best Gumbel score among the kept ids, ties to the smaller id. */
export function referenceSample(logits: ArrayLike<number>, r: SamplingRow): number {
  const { kept, score } = referenceScores(logits, r);
  let best = -1;
  score.forEach((s, i) => {
    if (kept[i] && (best < 0 || s > score[best]!)) best = i;
  });
  return best;
}
