import type { StepBatch } from '../primitives/step-batch.ts';

/** One whole sequence of a pooling step (an embedding input, or a cross-encoder's query + document pair). */
export interface PoolingInput {
  tokenIds: readonly number[];
  /** BERT's segment ids, one per token (absent: all 0). */
  tokenTypeIds?: readonly number[];
}

/**
 * The plan of a pooling step: every sequence whole (positions from 0), no KV cache (every slot -1, no block table),
 * one output row per sequence. logitsIndices names each sequence's last token.
 */
export function buildPoolingBatch(inputs: readonly PoolingInput[]): StepBatch {
  const numSeqs = inputs.length;
  const total = inputs.reduce((a, s) => a + s.tokenIds.length, 0);
  const inputIds = new Int32Array(total);
  const positions = new Int32Array(total);
  const cuSeqlensQ = new Int32Array(numSeqs + 1);
  const contextLens = new Int32Array(numSeqs);
  const logitsIndices = new Int32Array(numSeqs);
  const withTypes = inputs.some((s) => s.tokenTypeIds);
  const tokenTypeIds = withTypes ? new Int32Array(total) : undefined;
  let t = 0;
  let maxSeqlenQ = 0;
  inputs.forEach((s, i) => {
    const n = s.tokenIds.length;
    if (n === 0) throw new Error(`pooling input ${i} has no tokens`);
    if (s.tokenTypeIds && s.tokenTypeIds.length !== n) {
      throw new Error(`pooling input ${i}: ${s.tokenTypeIds.length} token types for ${n} tokens`);
    }
    inputIds.set(s.tokenIds, t);
    if (s.tokenTypeIds) tokenTypeIds!.set(s.tokenTypeIds, t);
    for (let p = 0; p < n; p++) positions[t + p] = p;
    t += n;
    cuSeqlensQ[i + 1] = t;
    contextLens[i] = n;
    logitsIndices[i] = t - 1;
    maxSeqlenQ = Math.max(maxSeqlenQ, n);
  });
  return {
    inputIds,
    positions,
    tokenTypeIds,
    slotMapping: new Int32Array(total).fill(-1),
    cuSeqlensQ,
    contextLens,
    blockTables: new Int32Array(numSeqs),
    maxBlocksPerSeq: 1,
    blockSize: 1,
    logitsIndices,
    numSeqs,
    maxSeqlenQ,
  };
}
