import type { StepBatch } from '../primitives/step-batch.ts';

/** One sequence's share of a step. */
export interface ScheduledChunk {
  /** Token ids to compute now. */
  tokenIds: ArrayLike<number>;
  /** Position of the first of them (tokens before it are already in the cache). */
  startPos: number;
  /** Block ids covering at least `startPos + tokenIds.length` tokens. */
  blockTable: ArrayLike<number>;
  /** Which of this chunk's tokens need logits: 'last', 'all' (prompt logprobs) or 'none' (mid-prompt chunk). */
  logits: 'last' | 'all' | 'none';
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
  let t = 0;
  let l = 0;
  chunks.forEach((c, s) => {
    const n = c.tokenIds.length;
    const needed = Math.ceil((c.startPos + n) / blockSize);
    if (c.blockTable.length < needed) {
      throw new Error(`sequence ${s}: block table has ${c.blockTable.length} blocks, needs ${needed}`);
    }
    for (let i = 0; i < n; i++) {
      const pos = c.startPos + i;
      inputIds[t + i] = c.tokenIds[i]!;
      positions[t + i] = pos;
      slotMapping[t + i] = c.blockTable[Math.floor(pos / blockSize)]! * blockSize + (pos % blockSize);
      if (c.logits === 'all') logitsIndices[l++] = t + i;
    }
    if (c.logits === 'last') logitsIndices[l++] = t + n - 1;
    for (let b = 0; b < c.blockTable.length; b++) blockTables[s * maxBlocksPerSeq + b] = c.blockTable[b]!;
    t += n;
    cuSeqlensQ[s + 1] = t;
    contextLens[s] = c.startPos + n;
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
  };
}
