/**
 * Float64 reference of SnapKV's key scores with the softmax computed explicitly (no LSE), and the step plan of a
 * random paged problem with compression plans, for the CPU op and the CUDA kernel alike.
 */

import { type KvCompressionPlan, SNAPKV } from '../../src/primitives/kv-compression.ts';
import type { StepBatch } from '../../src/primitives/step-batch.ts';
import type { PagedAttentionProblem } from './paged-attention-reference.ts';

/** Per plan `[Hk, ctx − window]`: each key's softmax probability summed over the window's rows and the group's heads, max-pooled. */
export function referenceSnapKvScores(p: PagedAttentionProblem, plans: readonly KvCompressionPlan[]): Float64Array[] {
  const { numHeads: Hq, numKvHeads: Hk, headDim: D, slidingWindow: SW } = p;
  const group = Hq / Hk;
  return plans.map(({ seq, window }) => {
    const ctx = p.contextLens[seq]!;
    const keys = ctx - window;
    const k = p.logicalK[seq]!;
    const raw = new Float64Array(Hk * keys);
    for (let i = 0; i < window; i++) {
      const row = p.cuSeqlensQ[seq + 1]! - window + i;
      const pos = keys + i;
      const lo = SW > 0 ? Math.max(0, pos - SW + 1) : 0;
      for (let h = 0; h < Hq; h++) {
        const g = Math.floor(h / group);
        const logits: number[] = [];
        for (let j = lo; j <= pos; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += p.q[(row * Hq + h) * D + d]! * k[(j * Hk + g) * D + d]!;
          logits.push(dot * p.scale);
        }
        const m = Math.max(...logits);
        const e = logits.map((l) => Math.exp(l - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = lo; j < keys; j++) raw[g * keys + j]! += e[j - lo]! / z;
      }
    }
    const half = (SNAPKV.poolKernel - 1) / 2;
    const pooled = new Float64Array(Hk * keys);
    for (let g = 0; g < Hk; g++) {
      for (let j = 0; j < keys; j++) {
        let m = 0;
        for (let n = Math.max(0, j - half); n <= Math.min(keys - 1, j + half); n++) m = Math.max(m, raw[g * keys + n]!);
        pooled[g * keys + j] = m;
      }
    }
    return pooled;
  });
}

/** The step plan of a problem: its queries are the step's tokens (slots -1: the cache is already written). */
export function problemBatch(p: PagedAttentionProblem, plans: readonly KvCompressionPlan[]): StepBatch {
  const T = p.cuSeqlensQ[p.seqs.length]!;
  const positions = new Int32Array(T);
  p.seqs.forEach((s, i) => {
    for (let t = 0; t < s.qLen; t++) positions[p.cuSeqlensQ[i]! + t] = s.ctxLen - s.qLen + t;
  });
  return {
    inputIds: new Int32Array(T),
    positions,
    slotMapping: new Int32Array(T).fill(-1),
    cuSeqlensQ: p.cuSeqlensQ,
    contextLens: p.contextLens,
    blockTables: p.blockTables,
    maxBlocksPerSeq: p.maxBlocksPerSeq,
    blockSize: p.blockSize,
    logitsIndices: new Int32Array(0),
    numSeqs: p.seqs.length,
    maxSeqlenQ: Math.max(...p.seqs.map((s) => s.qLen)),
    kvCompression: plans,
  };
}
