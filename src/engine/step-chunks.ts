import type { ScheduledChunk } from '../runner/step-batch.ts';
import type { ScheduledStep } from './scheduler.ts';

/** What the runner computes of a planned step: each sequence's chunk of tokens (its draft tokens after them). */
export function stepChunks(step: ScheduledStep): ScheduledChunk[] {
  return step.seqs.map(({ seq, start, cached, numTokens, logits, compress, draft }) => ({
    tokenIds: draft ? [...seq.tokenIds.slice(start), ...draft.tokens] : seq.tokenIds.slice(start, start + numTokens),
    startPos: start,
    cached,
    blockTable: seq.blockTable,
    logits,
    compress,
  }));
}
