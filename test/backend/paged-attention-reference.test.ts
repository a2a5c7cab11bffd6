import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pagedAttention } from '../../src/backend/cpu/attention.ts';
import { f32Plane } from '../../src/backend/cpu/kv-store.ts';
import {
  makePagedProblem,
  maxAbsDiff,
  type PagedAttentionProblem,
  referencePagedAttention,
} from '../helpers/paged-attention-reference.ts';

/** Dense attention over the unpaged keys with an explicit mask matrix: independent of block tables. */
function denseAttention(p: PagedAttentionProblem): { out: Float64Array; lse: Float64Array } {
  const { numHeads: Hq, numKvHeads: Hk, headDim: D, slidingWindow: W } = p;
  const totalQ = p.cuSeqlensQ[p.seqs.length]!;
  const out = new Float64Array(totalQ * Hq * D);
  const lse = new Float64Array(totalQ * Hq);
  p.seqs.forEach((s, si) => {
    const k = p.logicalK[si]!;
    const v = p.logicalV[si]!;
    for (let i = 0; i < s.qLen; i++) {
      const t = p.cuSeqlensQ[si]! + i;
      const pos = s.ctxLen - s.qLen + i;
      for (let h = 0; h < Hq; h++) {
        const kvh = Math.floor((h * Hk) / Hq);
        const logits: number[] = [];
        for (let j = 0; j < s.ctxLen; j++) {
          const visible = j <= pos && (W === 0 || pos - j < W);
          let dot = 0;
          for (let d = 0; d < D; d++) dot += p.q[(t * Hq + h) * D + d]! * k[(j * Hk + kvh) * D + d]!;
          logits.push(visible ? dot * p.scale : Number.NEGATIVE_INFINITY);
        }
        const z = Math.log(logits.reduce((a, x) => a + Math.exp(x), 0));
        lse[t * Hq + h] = z;
        logits.forEach((x, j) => {
          for (let d = 0; d < D; d++) out[(t * Hq + h) * D + d] += Math.exp(x - z) * v[(j * Hk + kvh) * D + d]!;
        });
      }
    }
  });
  return { out, lse };
}

/** The paged reference over a random problem of this shape agrees with `denseAttention` to rounding. */
function assertPagedMatchesDense(shape: Parameters<typeof makePagedProblem>[0]): void {
  const p = makePagedProblem(shape);
  const a = referencePagedAttention(p);
  const b = denseAttention(p);
  assert.ok(maxAbsDiff(a.out, b.out) < 1e-12);
  assert.ok(maxAbsDiff(a.lse, b.lse) < 1e-12);
}

test('paged reference matches dense masked attention: ragged, prefix, GQA, block boundaries', () => {
  assertPagedMatchesDense({
    seqs: [
      { qLen: 5, ctxLen: 5 },
      { qLen: 3, ctxLen: 11 },
      { qLen: 1, ctxLen: 9 },
      { qLen: 8, ctxLen: 8 },
    ],
    numHeads: 4,
    numKvHeads: 2,
    headDim: 8,
    blockSize: 4,
    seed: 1,
  });
});

test('paged reference with a sliding window matches dense masked attention', () => {
  assertPagedMatchesDense({
    seqs: [
      { qLen: 7, ctxLen: 10 },
      { qLen: 1, ctxLen: 13 },
    ],
    numHeads: 2,
    numKvHeads: 1,
    headDim: 4,
    blockSize: 4,
    slidingWindow: 3,
    seed: 2,
  });
});

test('one visible key: the output is its value and the LSE is the scaled score', () => {
  const p = makePagedProblem({
    seqs: [{ qLen: 1, ctxLen: 1 }],
    numHeads: 1,
    numKvHeads: 1,
    headDim: 4,
    blockSize: 4,
    seed: 3,
  });
  const { out, lse } = referencePagedAttention(p);
  const slot = p.blockTables[0]! * p.blockSize;
  let dot = 0;
  for (let d = 0; d < 4; d++) {
    assert.equal(out[d], p.vCache[slot * 4 + d]);
    dot += p.q[d]! * p.kCache[slot * 4 + d]!;
  }
  assert.ok(Math.abs(lse[0]! - dot * p.scale) < 1e-12);
});

test("paged reference with a soft-cap matches the CPU backend's soft-capped attention", () => {
  const p = makePagedProblem({
    seqs: [
      { qLen: 6, ctxLen: 10 },
      { qLen: 1, ctxLen: 13 },
    ],
    numHeads: 4,
    numKvHeads: 2,
    headDim: 8,
    blockSize: 4,
    slidingWindow: 5,
    softcap: 0.5,
    seed: 3,
  });
  const spec = { numHeads: 4, numKvHeads: 2, headDim: 8, scale: p.scale, slidingWindow: 5, softcap: 0.5 };
  const out = new Float32Array(p.q.length);
  const batch = {
    numSeqs: p.seqs.length,
    cuSeqlensQ: p.cuSeqlensQ,
    contextLens: p.contextLens,
    blockTables: p.blockTables,
    maxBlocksPerSeq: p.maxBlocksPerSeq,
    blockSize: p.blockSize,
  };
  pagedAttention(p.q, { k: f32Plane(p.kCache), v: f32Plane(p.vCache), numKvHeads: 2, headDim: 8 }, spec, batch, out);
  const ref = referencePagedAttention(p);
  assert.ok(maxAbsDiff(out, ref.out) < 1e-5);
  const uncapped = referencePagedAttention({ ...p, softcap: 0 });
  assert.ok(maxAbsDiff(uncapped.out, ref.out) > 1e-2, 'the cap changes the output');
});
