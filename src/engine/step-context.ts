import type { TextTokenizer } from '../loader/tokenizer.ts';
import type { TokenHistory } from './sampling.ts';
import type { Scheduler } from './scheduler.ts';
import type { Request, Sequence } from './sequence.ts';

/** What the per-step parts (logits, sampling, beam search, output) share with the engine. */
export interface StepContext {
  /** Owns the KV blocks: forked and finished sequences go through it. */
  readonly scheduler: Scheduler;
  readonly tokenizer: TextTokenizer;
  readonly eos: ReadonlySet<number>;
  readonly maxModelLen: number;
  /** A new sequence of `r` with its own detokenizer and random stream `stream`. */
  newSequence(r: Request, tokenIds: number[], stream: number): Sequence;
  /** Counts one generated token of `r` (engine counters and the request's metrics). */
  countToken(r: Request): void;
  /** Counts one verified draft: tokens proposed, and how many of them the target accepted. */
  countDraft(proposed: number, accepted: number): void;
}

/** What the logits processors need of a sequence: its tokens and the ids that end it (masked before min_tokens). */
export function tokenHistory(ctx: StepContext, r: Request, seq: Sequence): TokenHistory {
  const p = r.params;
  const stopIds = p.ignoreEos ? p.stopTokenIds : [...ctx.eos, ...p.stopTokenIds];
  return { promptIds: r.promptIds, outputIds: seq.outputIds, stopIds };
}

/** Whether `token` ends generation for this request: EOS (unless ignore_eos) or one of its stop_token_ids. */
export function endsGeneration(ctx: StepContext, r: Request, token: number): boolean {
  return (!r.params.ignoreEos && ctx.eos.has(token)) || r.params.stopTokenIds.includes(token);
}
