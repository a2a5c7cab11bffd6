import { appendToken } from './append-token.ts';
import { applyLogitsProcessors, argmax, isGreedy, sampleToken, samplingDistribution } from './sampling.ts';
import type { PendingVerify, Request, Rng, Sequence } from './sequence.ts';
import { type StepContext, tokenHistory } from './step-context.ts';

/**
 * Speculative verification (Leviathan et al.), one position at a time so every logits processor sees the tokens
 * accepted before it, exactly as non-speculative decoding would: draft token i is accepted with probability
 * min(1, p/q) under the target distribution p (after penalties, temperature, top-k/p, min-p), greedily when the
 * target's argmax agrees; on the first rejection the token is drawn from norm(max(0, p - q)) instead, and when all
 * are accepted one more comes from the last row. Each token goes through the usual stop and length checks, so EOS, a
 * stop string or max_tokens inside the run ends the sequence at that token. The cache keeps the accepted tokens.
 */
export function verifyDraft(ctx: StepContext, r: Request, seq: Sequence, pending: PendingVerify): void {
  const p = r.params;
  const { tokens: draft, probs } = pending.draft;
  let accepted = 0;
  for (let i = 0; i <= draft.length; i++) {
    const logits = Float32Array.from(pending.rows[i]!);
    applyLogitsProcessors(logits, p, tokenHistory(ctx, r, seq));
    let token: number;
    if (i === draft.length) token = sampleToken(logits, p, seq.rng);
    else if (isGreedy(p)) token = argmax(logits);
    else token = acceptOrResample(targetProbs(logits, p), draft[i]!, probs?.[i] ?? null, seq.rng);
    const agrees = i < draft.length && token === draft[i];
    if (agrees) accepted++;
    appendToken(ctx, r, seq, token);
    if (seq.finished || !agrees) break;
  }
  ctx.countDraft(draft.length, accepted);
  if (!seq.finished) ctx.scheduler.acceptDraft(seq, accepted);
}

/** The distribution a token is drawn from, dense over the vocabulary. */
export function targetProbs(logits: Float32Array, p: Request['params']): Float64Array {
  const out = new Float64Array(logits.length);
  const { ids, probs } = samplingDistribution(logits, p);
  ids.forEach((id, j) => {
    out[id] = probs[j]!;
  });
  return out;
}

/**
 * One position of rejection sampling: keeps `draftToken` with probability min(1, p/q), else draws from
 * norm(max(0, p - q)). `draftProbs` null: the draft is a point mass (n-gram lookup), so acceptance is p(token) and a
 * rejection draws from p without that token. The result is distributed exactly as p.
 */
export function acceptOrResample(
  target: Float64Array,
  draftToken: number,
  draftProbs: ArrayLike<number> | null,
  rng: Rng,
): number {
  const q = (i: number) => (draftProbs ? draftProbs[i]! : i === draftToken ? 1 : 0);
  if (rng.next() * q(draftToken) < target[draftToken]!) return draftToken;
  let total = 0;
  for (let i = 0; i < target.length; i++) total += Math.max(0, target[i]! - q(i));
  // p <= q everywhere means p = q: the draft was never rejectable; rounding got here, so fall back to p itself.
  if (!(total > 0)) return drawFrom(target, 1, rng, (i) => target[i]!);
  return drawFrom(target, total, rng, (i) => Math.max(0, target[i]! - q(i)));
}

function drawFrom(target: Float64Array, total: number, rng: Rng, weight: (i: number) => number): number {
  const u = rng.next() * total;
  let cum = 0;
  let last = 0;
  for (let i = 0; i < target.length; i++) {
    const w = weight(i);
    if (w <= 0) continue;
    cum += w;
    last = i;
    if (u < cum) return i;
  }
  return last;
}
