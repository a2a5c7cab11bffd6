import { appendText } from './output.ts';
import type { Request, Sequence } from './sequence.ts';
import type { StepContext } from './step-context.ts';
import type { FinishReason } from './types.ts';

/** Appends a generated token and ends the sequence on EOS, a stop id, a stop string, max_tokens or the context. */
export function appendToken(ctx: StepContext, r: Request, seq: Sequence, token: number): void {
  const p = r.params;
  seq.tokenIds.push(token);
  ctx.countToken(r);
  if (!p.ignoreEos && ctx.eos.has(token)) finishSeq(ctx, seq, 'stop', null);
  else if (p.stopTokenIds.includes(token)) finishSeq(ctx, seq, 'stop', token);
  else if (appendText(seq, token, p.stop, p.includeStopStr)) ctx.scheduler.free(seq);
  if (!seq.finished && (seq.outputLen >= p.maxTokens || seq.tokenIds.length >= ctx.maxModelLen)) {
    finishSeq(ctx, seq, 'length', null);
  }
}

/** Ends a sequence and gives its blocks back. */
export function finishSeq(
  ctx: StepContext,
  seq: Sequence,
  reason: FinishReason,
  stopReason: string | number | null,
): void {
  seq.finishReason = reason;
  seq.stopReason = stopReason;
  seq.text += seq.detok.flush?.() ?? '';
  ctx.scheduler.free(seq);
}
