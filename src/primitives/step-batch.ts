import type { KvCompressionPlan } from './kv-compression.ts';

/**
 * The CPU-side plan of one model step (FlashInfer's plan/run split): built once per step from the scheduled
 * sequences, uploaded once, then read by every layer. Contracts are in ARCHITECTURE.md.
 */
export interface StepBatch {
  /** `[T]` token ids to compute this step, sequences concatenated. */
  inputIds: Int32Array;
  /** `[T]` absolute position of each token. */
  positions: Int32Array;
  /** `[T]` segment of each token (BERT's token_type_ids: 1 for a cross-encoder's second text); absent = all 0. */
  tokenTypeIds?: Int32Array;
  /** `[T]` cache slot (`block_id * block_size + offset`) each token's K/V is written to; -1 = do not write. */
  slotMapping: Int32Array;
  /** `[S + 1]` prefix sums of the query tokens per sequence. */
  cuSeqlensQ: Int32Array;
  /** `[S]` tokens in the cache for each sequence once this step's K/V is written (the key length). */
  contextLens: Int32Array;
  /** `[S, maxBlocksPerSeq]` block ids, row-major, padded with 0. */
  blockTables: Int32Array;
  maxBlocksPerSeq: number;
  blockSize: number;
  /** Token rows (indices into the T tokens) whose logits this step returns. */
  logitsIndices: Int32Array;
  numSeqs: number;
  /** Longest query length in the batch (1 for a decode-only step). */
  maxSeqlenQ: number;
  /** Sequences whose KV cache is compressed once this step's attention has read it (absent: none). */
  kvCompression?: readonly KvCompressionPlan[];
}
