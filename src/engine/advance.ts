import { applyTokenBitmask } from '../grammar/apply-mask.ts';
import { SlotState } from '../grammar/shared-state.ts';
import { appendToken, finishSeq } from './append-token.ts';
import { beamStep } from './beam-search.ts';
import { mirostatToken } from './mirostat.ts';
import { tokenLogprob } from './output.ts';
import { applyLogitsProcessors, logSoftmax, sampleToken } from './sampling.ts';
import { liveSeqs, type Request, type Sequence } from './sequence.ts';
import { type StepContext, tokenHistory } from './step-context.ts';
import { verifyDraft } from './verify-draft.ts';

/**
 * Advances a request whose live sequences all have their next token (or its logits) ready: one beam-search step, or
 * one token per sequence, taken from the device sampler or drawn on the host, then detokenized and checked for stops.
 * Returns false, drawing nothing, when a grammar mask is owed by a worker busy compiling (try again next step).
 */
export function advanceRequest(ctx: StepContext, r: Request): boolean {
  const p = r.params;
  if (p.useBeamSearch) {
    beamStep(ctx, r);
    return true;
  }
  const first = r.seqs[0]!;
  if (r.seqs.length === 1 && p.bestOf > 1 && first.outputLen === 0) {
    // The prompt is computed once; the bestOf samples fork from it and share its blocks.
    for (let i = 1; i < p.bestOf; i++) {
      const child = ctx.newSequence(r, [...first.tokenIds], i);
      ctx.scheduler.fork(first, child);
      child.pendingLogits = first.pendingLogits;
      r.seqs.push(child);
    }
  }
  if (liveSeqs(r).some((s) => s.grammar && !s.grammar.ready && s.grammar.blocked)) return false;
  const needLogprobs = p.logprobs !== null || p.bestOf > p.n;
  for (const seq of liveSeqs(r)) {
    if (seq.pendingVerify !== null) {
      const pending = seq.pendingVerify;
      seq.pendingVerify = null;
      verifyDraft(ctx, r, seq, pending);
      continue;
    }
    if (seq.pendingToken !== null) {
      const token = seq.pendingToken;
      seq.pendingToken = null;
      seq.grammar?.accept(token);
      appendToken(ctx, r, seq, token);
      continue;
    }
    const raw = seq.pendingLogits!;
    seq.pendingLogits = null;
    const logits = Float32Array.from(raw);
    if (seq.grammar && !applyGrammar(ctx, seq, logits)) continue;
    applyLogitsProcessors(logits, p, tokenHistory(ctx, r, seq));
    const token = p.mirostat ? mirostatToken(logits, p, seq) : sampleToken(logits, p, seq.rng);
    seq.grammar?.accept(token);
    if (needLogprobs) {
      const lp = logSoftmax(raw);
      seq.cumLogprob += lp[token]!;
      if (p.logprobs !== null) {
        seq.logprobs.push(tokenLogprob(ctx.tokenizer, token, lp, p.logprobs, seq.tokenIds, seq.tokenIds.length));
      }
    }
    appendToken(ctx, r, seq, token);
  }
  return true;
}

/**
 * Masks the tokens the sequence's grammar forbids; a complete grammar (only stop tokens left) ends the sequence
 * instead, and returns false, as it does when the grammar's worker failed.
 */
function applyGrammar(ctx: StepContext, seq: Sequence, logits: Float32Array): boolean {
  const state = seq.grammar!.state();
  // Its worker failed: the next step fails this request (with the worker's error), and only it.
  if (state === SlotState.Failed) return false;
  if (state === SlotState.Rejected) throw new Error('a token drawn under a grammar was rejected by it');
  if (state !== SlotState.Running) {
    finishSeq(ctx, seq, 'stop', null);
    return false;
  }
  applyTokenBitmask(logits, seq.grammar!.mask());
  return true;
}
