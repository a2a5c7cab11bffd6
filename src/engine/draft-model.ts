import type { StepRunner } from '../runner/model-runner.ts';
import { BlockManager } from './block-manager.ts';
import { argmax, isGreedy, samplingDistribution } from './sampling.ts';
import { type Proposal, type Request, Rng, Sequence } from './sequence.ts';

/** A draft model as the engine sees it: its runner (its own weights and KV cache) and that cache's size. */
export interface DraftModel {
  runner: StepRunner;
  numBlocks: number;
  blockSize: number;
  /** Longest sequence the draft model takes. */
  maxModelLen: number;
}

/** One sequence asking for up to `k` draft tokens. */
export interface DraftRequest {
  r: Request;
  seq: Sequence;
  k: number;
}

const NO_TEXT = { push: () => '' };

/**
 * Proposes draft tokens with a smaller model of the same vocabulary. Each target sequence has a mirror in the draft's
 * own paged cache, kept in step with the target's accepted tokens: before proposing, the mirror keeps the cached
 * tokens it shares with the target (what the target rejected is dropped, its blocks given back) and computes the rest,
 * then draws K tokens one batched draft step at a time. A draw follows the request's temperature and top-k/p/min-p on
 * the draft's logits, and the distribution it came from goes with it (verification needs q); greedy requests take
 * the argmax (q then a point mass). A sequence whose mirror finds no free blocks proposes nothing this step.
 */
export class DraftModelProposer {
  private readonly blocks: BlockManager;
  private readonly mirrors = new Map<Sequence, Sequence>();

  constructor(private readonly draft: DraftModel) {
    this.blocks = new BlockManager(draft.numBlocks, draft.blockSize, false);
  }

  propose(requests: readonly DraftRequest[]): Map<Sequence, Proposal> {
    const asking = new Set(requests.map((q) => q.seq));
    // Sequences that finished, were preempted or stopped speculating give their mirrors' blocks back.
    for (const [seq, mirror] of this.mirrors) {
      if (!asking.has(seq)) this.forget(seq, mirror);
    }
    const proposals = new Map<Sequence, { tokens: number[]; probs: Float32Array[] }>();
    let active = requests
      .filter(({ seq, k }) => k > 0 && seq.tokenIds.length + k <= this.draft.maxModelLen)
      .map((q) => {
        const proposal = { tokens: [] as number[], probs: [] as Float32Array[] };
        proposals.set(q.seq, proposal);
        return { ...q, mirror: this.sync(q.seq), proposal };
      });
    const vocab = this.draft.runner.vocabSize;
    while (active.length > 0) {
      active = active.filter(({ seq, mirror }) => {
        const fits = this.blocks.blocksNeeded(mirror, mirror.uncomputed) <= this.blocks.numFree;
        if (fits) this.blocks.allocate(mirror, mirror.uncomputed);
        else this.forget(seq, mirror);
        return fits;
      });
      if (active.length === 0) break;
      const chunks = active.map(({ mirror }) => ({
        tokenIds: mirror.tokenIds.slice(mirror.numComputed),
        startPos: mirror.numComputed,
        blockTable: mirror.blockTable,
        logits: 'last' as const,
      }));
      const rows = this.draft.runner.execute(chunks, []).toHost(active.map((_, i) => i));
      for (const [i, { r, seq, mirror, proposal }] of active.entries()) {
        this.blocks.markComputed(mirror, mirror.uncomputed);
        const row = rows.subarray(i * vocab, (i + 1) * vocab);
        let token: number;
        if (isGreedy(r.params)) token = argmax(row);
        else {
          const q = new Float32Array(vocab);
          const { ids, probs } = samplingDistribution(row, r.params);
          ids.forEach((id, j) => {
            q[id] = probs[j]!;
          });
          token = draw(q, seq.rng);
          proposal.probs.push(q);
        }
        proposal.tokens.push(token);
        mirror.tokenIds.push(token);
      }
      active = active.filter((a) => a.proposal.tokens.length < a.k);
    }
    const out = new Map<Sequence, Proposal>();
    for (const [seq, { tokens, probs }] of proposals) {
      if (tokens.length > 0) out.set(seq, probs.length > 0 ? { tokens, probs } : { tokens });
    }
    return out;
  }

  /** The mirror of `seq`, holding the cached tokens it shares with the target and the target's tokens after them. */
  private sync(seq: Sequence): Sequence {
    let mirror = this.mirrors.get(seq);
    if (!mirror) {
      mirror = new Sequence([], seq.promptLen, NO_TEXT, new Rng(0, 0));
      this.mirrors.set(seq, mirror);
    }
    let same = 0;
    const limit = Math.min(mirror.numComputed, seq.tokenIds.length);
    while (same < limit && mirror.tokenIds[same] === seq.tokenIds[same]) same++;
    // Leave one token to compute: its logits start the draft.
    mirror.numComputed = Math.min(same, seq.tokenIds.length - 1);
    this.blocks.trim(mirror);
    mirror.tokenIds = [...seq.tokenIds];
    return mirror;
  }

  private forget(seq: Sequence, mirror: Sequence): void {
    this.blocks.free(mirror);
    this.mirrors.delete(seq);
  }
}

function draw(q: Float32Array, rng: Rng): number {
  let u = rng.next();
  let last = 0;
  for (let i = 0; i < q.length; i++) {
    if (q[i]! <= 0) continue;
    last = i;
    if ((u -= q[i]!) < 0) return i;
  }
  return last;
}
