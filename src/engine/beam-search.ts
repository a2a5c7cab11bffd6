import { tokenLogprob } from './output.ts';
import { applyLogitsProcessors, logSoftmax, topEntries } from './sampling.ts';
import { liveSeqs, type Request, type Sequence } from './sequence.ts';
import { endsGeneration, type StepContext, tokenHistory } from './step-context.ts';

interface Candidate {
  parent: Sequence;
  token: number;
  lp: Float32Array;
  score: number;
}

/**
 * One beam-search step over all live beams: each beam's 2 x width best next tokens are scored by cumulative
 * logprob; the best `width` continue (forking their parent, which shares its blocks), candidates that end generation
 * within the top `width` become finished hypotheses. Stops once `width` hypotheses are finished (HF's
 * early_stopping=True) or at max_tokens.
 */
export function beamStep(ctx: StepContext, r: Request): void {
  const p = r.params;
  const width = p.bestOf;
  const beams = liveSeqs(r);
  const cands: Candidate[] = [];
  for (const b of beams) {
    const logits = Float32Array.from(b.pendingLogits!);
    b.pendingLogits = null;
    applyLogitsProcessors(logits, p, tokenHistory(ctx, r, b));
    const lp = logSoftmax(logits);
    for (const { id, value } of topEntries(lp, 2 * width)) {
      cands.push({ parent: b, token: id, lp, score: b.cumLogprob + value });
    }
  }
  cands.sort((a, b) => b.score - a.score);
  const next: Candidate[] = [];
  for (let rank = 0; rank < cands.length && next.length < width; rank++) {
    const c = cands[rank]!;
    if (!endsGeneration(ctx, r, c.token)) next.push(c);
    else if (rank < width) {
      const hyp = beamChild(ctx, r, c.parent, false);
      extendBeam(ctx, r, hyp, c);
      hyp.finishReason = 'stop';
      hyp.stopReason = ctx.eos.has(c.token) ? null : c.token;
      r.beamDone.push(hyp);
    }
  }
  // Fork every extra child before any parent moves on, then drop the parents nobody continues.
  const firstUse = new Map<Sequence, Candidate>();
  const forks: [Sequence, Candidate][] = [];
  for (const c of next) {
    if (!firstUse.has(c.parent)) firstUse.set(c.parent, c);
    else forks.push([beamChild(ctx, r, c.parent, true), c]);
  }
  for (const b of beams) if (!firstUse.has(b)) ctx.scheduler.free(b);
  r.seqs = [...firstUse.keys(), ...forks.map(([s]) => s)];
  for (const [seq, c] of [...firstUse, ...forks]) {
    extendBeam(ctx, r, seq, c);
    ctx.countToken(r);
  }
  r.metrics.firstTokenTime ??= Date.now();
  const atLength = r.seqs.some((s) => s.outputLen >= p.maxTokens || s.tokenIds.length >= ctx.maxModelLen);
  if (atLength) {
    for (const s of r.seqs) {
      s.finishReason = 'length';
      r.beamDone.push(s);
    }
  }
  if (atLength || r.beamDone.length >= width || r.seqs.length === 0) {
    for (const s of r.seqs) s.finishReason ??= 'length';
    r.finished = true;
  }
}

function beamChild(ctx: StepContext, r: Request, parent: Sequence, shareBlocks: boolean): Sequence {
  const child = ctx.newSequence(r, [...parent.tokenIds], 0);
  child.cumLogprob = parent.cumLogprob;
  child.logprobs = [...parent.logprobs];
  if (shareBlocks) ctx.scheduler.fork(parent, child);
  return child;
}

function extendBeam(ctx: StepContext, r: Request, seq: Sequence, c: Candidate): void {
  const top = r.params.logprobs;
  if (top !== null) {
    seq.logprobs.push(tokenLogprob(ctx.tokenizer, c.token, c.lp, top, seq.tokenIds, seq.tokenIds.length));
  }
  seq.tokenIds.push(c.token);
  seq.cumLogprob = c.score;
}
