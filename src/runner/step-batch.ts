import type { KvCompressionPlan } from '../primitives/kv-compression.ts';
import type { StepBatch } from '../primitives/step-batch.ts';

/** One sequence's share of a step. */
export interface ScheduledChunk {
  /** Token ids to compute now. */
  tokenIds: ArrayLike<number>;
  /** Position of the first of them (tokens before it are already computed). */
  startPos: number;
  /**
   * Entries the sequence holds in the cache before this chunk, where its tokens' K/V go on from: `startPos` unless KV
   * compression dropped some (positions, for RoPE, stay the tokens' own).
   */
  cached?: number;
  /** Block ids covering at least `cached + tokenIds.length` entries. */
  blockTable: ArrayLike<number>;
  /** Which of this chunk's tokens need logits: 'last', 'all' (prompt logprobs) or 'none' (mid-prompt chunk). */
  logits: 'last' | 'all' | 'none';
  /** The chunk ends the prompt, whose KV is then compressed (see `KvCompressionPlan`). */
  compress?: Omit<KvCompressionPlan, 'seq'>;
}

export function buildStepBatch(chunks: readonly ScheduledChunk[], blockSize: number): StepBatch {
  const numSeqs = chunks.length;
  let total = 0;
  let maxBlocksPerSeq = 1;
  let maxSeqlenQ = 0;
  let numLogits = 0;
  for (const c of chunks) {
    total += c.tokenIds.length;
    maxSeqlenQ = Math.max(maxSeqlenQ, c.tokenIds.length);
    maxBlocksPerSeq = Math.max(maxBlocksPerSeq, c.blockTable.length);
    numLogits += c.logits === 'all' ? c.tokenIds.length : c.logits === 'last' ? 1 : 0;
  }
  const inputIds = new Int32Array(total);
  const positions = new Int32Array(total);
  const slotMapping = new Int32Array(total);
  const cuSeqlensQ = new Int32Array(numSeqs + 1);
  const contextLens = new Int32Array(numSeqs);
  const blockTables = new Int32Array(numSeqs * maxBlocksPerSeq);
  const logitsIndices = new Int32Array(numLogits);
  const kvCompression: KvCompressionPlan[] = [];
  let t = 0;
  let l = 0;
  chunks.forEach((c, s) => {
    const n = c.tokenIds.length;
    const cached = c.cached ?? c.startPos;
    const needed = Math.ceil((cached + n) / blockSize);
    if (c.blockTable.length < needed) {
      throw new Error(`sequence ${s}: block table has ${c.blockTable.length} blocks, needs ${needed}`);
    }
    for (let i = 0; i < n; i++) {
      const entry = cached + i;
      inputIds[t + i] = c.tokenIds[i]!;
      positions[t + i] = c.startPos + i;
      slotMapping[t + i] = c.blockTable[Math.floor(entry / blockSize)]! * blockSize + (entry % blockSize);
      if (c.logits === 'all') logitsIndices[l++] = t + i;
    }
    if (c.logits === 'last') logitsIndices[l++] = t + n - 1;
    for (let b = 0; b < c.blockTable.length; b++) blockTables[s * maxBlocksPerSeq + b] = c.blockTable[b]!;
    t += n;
    cuSeqlensQ[s + 1] = t;
    contextLens[s] = cached + n;
    if (c.compress) kvCompression.push({ seq: s, ...c.compress });
  });
  return {
    inputIds,
    positions,
    slotMapping,
    cuSeqlensQ,
    contextLens,
    blockTables,
    maxBlocksPerSeq,
    blockSize,
    logitsIndices,
    numSeqs,
    maxSeqlenQ,
    ...(kvCompression.length > 0 && { kvCompression }),
  };
}
