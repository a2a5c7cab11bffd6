import type { AttentionSpec } from '../backend.ts';
import type { DevPtr } from './driver.ts';
import type { DecodeWorkspace } from './flash-attention.ts';
import { DECODE, decodeWorkspaceBytes } from './flash-sizing.ts';

/**
 * A backend's split-KV decode scratch (fp32 partial outputs and their LSE), sized for the most sequences, query heads
 * and the largest head size any decode has asked for: a model's layers share one shape (sliding or not), but models
 * on one backend need not (a draft model beside its target). An outgrown scratch is kept, not freed, so graphs
 * captured over it stay valid; the backend's release frees them all.
 */
export class DecodeScratch {
  private ws: DecodeWorkspace | null = null;
  private seqs = 0;
  private numHeads = 0;
  private headDim = 0;

  constructor(
    private readonly alloc: (bytes: number) => DevPtr,
    /** The sequences a step may hold (the step buffers' capacity): the least a scratch is sized for. */
    private readonly capacitySeqs: () => number,
  ) {}

  /** Scratch for `numSeqs` sequences of `spec`'s heads: this one where it holds them, else a larger one. */
  get(numSeqs: number, spec: Pick<AttentionSpec, 'numHeads' | 'headDim'>): DecodeWorkspace {
    if (this.ws && numSeqs <= this.seqs && spec.numHeads <= this.numHeads && spec.headDim <= this.headDim) {
      return this.ws;
    }
    this.seqs = Math.max(numSeqs, this.seqs, this.capacitySeqs());
    this.numHeads = Math.max(spec.numHeads, this.numHeads);
    this.headDim = Math.max(spec.headDim, this.headDim);
    const bytes = decodeWorkspaceBytes(this.seqs, this.numHeads, this.headDim);
    const [partialO, partialLse] = [this.alloc(bytes.partialO), this.alloc(bytes.partialLse)];
    this.ws = { partialO, partialLse, maxSplits: DECODE.maxSplits };
    return this.ws;
  }
}
