import { type DraftModel, DraftModelProposer, type DraftRequest } from './draft-model.ts';
import { type NgramSettings, proposeNgram } from './ngram-proposer.ts';
import type { Proposal, Request, Sequence } from './sequence.ts';

/** Speculative decoding as the engine runs it: prompt lookup over the sequence's own tokens, or a draft model. */
export type SpeculativeConfig = {
  /** Most draft tokens proposed per sequence and step (K). */
  numTokens: number;
} & ({ method: 'ngram'; ngram: NgramSettings } | { method: 'draft'; draft: DraftModel });

/**
 * Whether a request may speculate. The others decode one token per step, because what they ask for cannot be
 * honoured exactly over a verified run: beam search and best_of rank whole candidates; n > 1 forks share blocks that
 * rolled-back slots would have to copy; logprobs would be reported from rows the sampler rewrote; a grammar's mask for
 * position i + 1 exists only once its worker has accepted token i; mirostat's distribution at i + 1 depends on the
 * token drawn at i.
 */
export function speculates(r: Request): boolean {
  const p = r.params;
  return (
    !p.useBeamSearch &&
    p.n === 1 &&
    p.bestOf === 1 &&
    p.logprobs === null &&
    p.mirostat === 0 &&
    r.grammarKey === undefined
  );
}

/**
 * Proposes draft tokens for every running request that is about to decode one token: at most K, and never past
 * max_tokens or the context (the target's bonus token needs a place too).
 */
export class Speculator {
  private readonly draftModel: DraftModelProposer | null;

  constructor(
    readonly config: SpeculativeConfig,
    private readonly maxModelLen: number,
  ) {
    this.draftModel = config.method === 'draft' ? new DraftModelProposer(config.draft) : null;
  }

  propose(running: readonly Request[]): Map<Sequence, Proposal> {
    const asking: DraftRequest[] = [];
    for (const r of running) {
      const seq = r.seqs[0]!;
      if (!speculates(r) || seq.finished || seq.uncomputed !== 1 || seq.hasPending) continue;
      const room = Math.min(r.params.maxTokens - seq.outputLen, this.maxModelLen - seq.tokenIds.length) - 1;
      asking.push({ r, seq, k: Math.min(this.config.numTokens, room) });
    }
    if (this.config.method === 'draft') return this.draftModel!.propose(asking);
    const { ngram } = this.config;
    const drafts = new Map<Sequence, Proposal>();
    for (const { seq, k } of asking) {
      const tokens = proposeNgram(seq.tokenIds, k, ngram);
      if (tokens.length > 0) drafts.set(seq, { tokens });
    }
    return drafts;
  }
}
