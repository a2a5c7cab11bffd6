import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { pagedOf } from '../../../src/backend/cpu/step-context.ts';
import { CpuTensor } from '../../../src/backend/cpu/tensor.ts';
import { kthLargest, selectKeys } from '../../../src/models/kv-compression.ts';
import type { KvCompressionPlan } from '../../../src/primitives/kv-compression.ts';
import { mulberry32 } from '../../../src/util/random.ts';
import {
  makePagedProblem,
  type PagedAttentionProblem,
  referencePagedAttention,
} from '../../helpers/paged-attention-reference.ts';
import { problemBatch, referenceSnapKvScores } from '../../helpers/snapkv-reference.ts';

function cpuProblem(p: PagedAttentionProblem) {
  const backend = new CpuBackend({ threads: 1 });
  const spec = {
    numHeads: p.numHeads,
    numKvHeads: p.numKvHeads,
    headDim: p.headDim,
    scale: p.scale,
    slidingWindow: p.slidingWindow,
  };
  const cache = backend.allocKvCache({ ...spec, numLayers: 1, numBlocks: p.numBlocks, blockSize: p.blockSize })[0]!;
  pagedOf(cache).k.data.set(p.kCache);
  pagedOf(cache).v.data.set(p.vCache);
  const q = new CpuTensor([p.q.length / (p.numHeads * p.headDim), p.numHeads * p.headDim], p.q.slice());
  return { backend, spec, cache, q };
}

for (const [name, shape] of [
  [
    'GQA, two plans beside a decode and an unplanned prefill',
    { numHeads: 8, numKvHeads: 2, headDim: 16, slidingWindow: 0 },
  ],
  ['MHA with a sliding window', { numHeads: 4, numKvHeads: 4, headDim: 8, slidingWindow: 24 }],
] as const) {
  test(`the CPU's LSE and SnapKV scores match an explicit float64 softmax: ${name}`, () => {
    const p = makePagedProblem({
      seqs: [
        { qLen: 40, ctxLen: 70 },
        { qLen: 1, ctxLen: 33 },
        { qLen: 12, ctxLen: 12 },
        { qLen: 50, ctxLen: 50 },
      ],
      ...shape,
      blockSize: 4,
      seed: 7 + shape.headDim,
      qRange: 3,
    });
    const plans: KvCompressionPlan[] = [
      { seq: 0, window: 32, budget: 48 },
      { seq: 3, window: 9, budget: 20 },
    ];
    const { backend, spec, cache, q } = cpuProblem(p);
    const step = backend.beginStep(problemBatch(p, plans));
    const { out, lse } = backend.attentionWithLse(q, cache, spec, step);
    const ref = referencePagedAttention(p);
    const lseGot = backend.toHost(lse);
    for (let i = 0; i < ref.lse.length; i++) assert.ok(Math.abs(lseGot[i]! - ref.lse[i]!) < 1e-4, `lse ${i}`);
    const outGot = backend.toHost(out);
    for (let i = 0; i < ref.out.length; i++) assert.ok(Math.abs(outGot[i]! - ref.out[i]!) < 1e-4, `out ${i}`);
    assert.deepEqual(outGot, backend.toHost(backend.attention(q, cache, spec, step)), 'attention is unchanged');

    const scores = backend.toHost(backend.kvKeyScores(q, lse, cache, spec, step));
    const want = referenceSnapKvScores(p, plans);
    assert.equal(
      scores.length,
      want.reduce((n, w) => n + w.length, 0),
    );
    let o = 0;
    for (const w of want) {
      for (let i = 0; i < w.length; i++, o++) {
        assert.ok(Math.abs(scores[o]! - w[i]!) <= 1e-5 * Math.max(1, w[i]!), `score ${o}: ${scores[o]} vs ${w[i]}`);
      }
    }
  });
}

test('selectKeys keeps the sinks, the window and the best-scored keys between them, ascending', () => {
  // One plan, 2 KV heads, 14 keys, window 3, budget 9: 4 sinks + 2 picks + 3 window.
  const keys = 11;
  const scores = new Float32Array(2 * keys);
  scores.set([9, 9, 9, 9, 0.1, 0.5, 0.2, 0.7, 0.3, 0.5, 0.0]);
  scores.set([0, 0, 0, 0, 0.4, 0.4, 0.4, 0.1, 0.1, 0.1, 0.9], keys);
  const keep = selectKeys(scores, [{ seq: 1, window: 3, budget: 9 }], Int32Array.from([5, 14]), 2);
  assert.deepEqual([...keep.subarray(0, 9)], [0, 1, 2, 3, 5, 7, 11, 12, 13]);
  // Ties go to the earlier key.
  assert.deepEqual([...keep.subarray(9)], [0, 1, 2, 3, 4, 10, 11, 12, 13]);
  assert.throws(() => selectKeys(scores, [{ seq: 1, window: 3, budget: 6 }], Int32Array.from([5, 14]), 2), /cannot/);
});

test('kthLargest is the k-th value of a descending sort, on distinct, tied and sorted inputs', () => {
  const rnd = mulberry32(7);
  const inputs = [
    Float32Array.from({ length: 1000 }, () => rnd()),
    Float32Array.from({ length: 999 }, () => Math.floor(rnd() * 5)),
    Float32Array.from({ length: 500 }, (_, i) => i),
    Float32Array.from({ length: 500 }, (_, i) => -i),
    new Float32Array(64).fill(3),
    Float32Array.from([2]),
  ];
  for (const a of inputs) {
    const sorted = Float32Array.from(a).sort().reverse();
    for (const k of [1, 2, Math.ceil(a.length / 3), a.length - 1, a.length].filter((x) => x >= 1)) {
      assert.equal(kthLargest(Float32Array.from(a), k), sorted[k - 1], `k = ${k} of ${a.length}`);
    }
  }
});

test("compactKv moves each head's kept entries to its first entries and leaves other sequences alone", () => {
  const p = makePagedProblem({
    seqs: [
      { qLen: 3, ctxLen: 21 },
      { qLen: 2, ctxLen: 9 },
    ],
    numHeads: 4,
    numKvHeads: 2,
    headDim: 4,
    blockSize: 4,
    seed: 3,
  });
  const plans: KvCompressionPlan[] = [{ seq: 0, window: 3, budget: 10 }];
  const { backend, cache } = cpuProblem(p);
  const step = backend.beginStep(problemBatch(p, plans));
  const keep = Int32Array.from([0, 1, 2, 3, 5, 8, 9, 18, 19, 20, 0, 1, 2, 3, 4, 6, 17, 18, 19, 20]);
  backend.compactKv(cache, keep, step);
  const k = pagedOf(cache).k.data;
  const v = pagedOf(cache).v.data;
  const row = (s: number, j: number, g: number) =>
    ((p.blockTables[s * p.maxBlocksPerSeq + Math.floor(j / 4)]! * 4 + (j % 4)) * 2 + g) * 4;
  for (let g = 0; g < 2; g++) {
    for (let i = 0; i < 10; i++) {
      const from = keep[g * 10 + i]!;
      const logical = (from * 2 + g) * 4;
      assert.deepEqual(
        [...k.subarray(row(0, i, g), row(0, i, g) + 4)],
        [...p.logicalK[0]!.subarray(logical, logical + 4)],
      );
      assert.deepEqual(
        [...v.subarray(row(0, i, g), row(0, i, g) + 4)],
        [...p.logicalV[0]!.subarray(logical, logical + 4)],
      );
    }
  }
  for (let j = 0; j < 9; j++) {
    const r = row(1, j, 0);
    assert.deepEqual([...k.subarray(r, r + 8)], [...p.logicalK[1]!.subarray(j * 8, j * 8 + 8)], `sequence 1 key ${j}`);
  }
});
