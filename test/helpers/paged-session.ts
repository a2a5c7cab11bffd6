import type { LayerKvCache } from '../../src/backend/backend.ts';
import type { Model } from '../../src/models/model.ts';
import type { KvQuant } from '../../src/primitives/kv-cache-type.ts';
import { buildStepBatch, type ScheduledChunk } from '../../src/runner/step-batch.ts';

/** A deterministic shuffle (LCG), so block tables are scattered but reproducible. */
export function shuffled(n: number, seed = 12345): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  let s = seed;
  for (let i = n - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A sequence's cache state: tokens already in the cache and the blocks holding them. */
interface SessionSeq {
  cached: number;
  blocks: number[];
}

/**
 * Drives a model through the paged KV cache the way the engine does: each step schedules chunks of sequences,
 * blocks are handed out from a shuffled free list as sequences grow, and the step batch is built by buildStepBatch.
 */
export class PagedSession {
  private readonly kv: LayerKvCache[];
  private readonly free: number[];
  private readonly seqs = new Map<number, SessionSeq>();

  constructor(
    private readonly model: Model,
    private readonly blockSize = 4,
    numBlocks = 256,
    kvQuant?: KvQuant,
  ) {
    this.kv = model.backend.allocKvCache({ ...model.kvShape, numBlocks, blockSize, quant: kvQuant });
    this.free = shuffled(numBlocks);
  }

  /** Runs one step; returns the logit rows (one per 'last' chunk, one per token of an 'all' chunk), in order. */
  step(chunks: { seq: number; tokens: readonly number[]; logits?: ScheduledChunk['logits'] }[]): Float32Array[] {
    const scheduled = chunks.map(({ seq, tokens, logits = 'last' }): ScheduledChunk => {
      const s = this.seqs.get(seq) ?? { cached: 0, blocks: [] };
      this.seqs.set(seq, s);
      while (s.blocks.length * this.blockSize < s.cached + tokens.length) {
        const b = this.free.pop();
        if (b === undefined) throw new Error('out of KV blocks');
        s.blocks.push(b);
      }
      const chunk = { tokenIds: tokens, startPos: s.cached, blockTable: [...s.blocks], logits };
      s.cached += tokens.length;
      return chunk;
    });
    const backend = this.model.backend;
    const batch = buildStepBatch(scheduled, this.blockSize);
    const forward = (step: ReturnType<typeof backend.beginStep>) => this.model.forward(step, this.kv);
    const out = backend.forwardStep ? backend.forwardStep(batch, forward) : forward(backend.beginStep(batch));
    const logits = backend.toHost(out);
    const vocab = logits.length / batch.logitsIndices.length;
    return Array.from(batch.logitsIndices, (_, r) => logits.subarray(r * vocab, (r + 1) * vocab));
  }
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Ids of the k largest values, largest first. */
export function topK(x: ArrayLike<number>, k: number): number[] {
  return Array.from(x, (v, i) => [v, i] as const)
    .sort((a, b) => b[0] - a[0])
    .slice(0, k)
    .map(([, i]) => i);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Logits of `prompt` (its last row), then of each token of `forced` fed as its own decode step; copies. */
export function teacherForced(model: Model, prompt: readonly number[], forced: readonly number[]): Float32Array[] {
  const session = new PagedSession(model);
  const rows = [session.step([{ seq: 0, tokens: prompt }])[0]!];
  for (const t of forced) rows.push(session.step([{ seq: 0, tokens: [t] }])[0]!);
  return rows.map((r) => Float32Array.from(r));
}

/** Two sequences: a batched prefill of different lengths, then greedy decode steps of both in one batch. */
export function twoSequenceGreedy(session: PagedSession, steps: number): { logits: Float32Array[]; ids: number[] } {
  const logits = session.step([
    { seq: 0, tokens: [1, 17, 230, 5, 99, 42, 7, 300, 11, 64, 3] },
    { seq: 1, tokens: [1, 400, 8, 250] },
  ]);
  const ids = logits.map((l) => argmax(l));
  for (let s = 0; s < steps; s++) {
    const next = session.step([
      { seq: 0, tokens: [ids.at(-2)!] },
      { seq: 1, tokens: [ids.at(-1)!] },
    ]);
    logits.push(...next);
    ids.push(...next.map((l) => argmax(l)));
  }
  return { logits, ids };
}
