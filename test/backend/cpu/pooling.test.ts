import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { CpuTensor } from '../../../src/backend/cpu/tensor.ts';
import { kernelsDir } from '../../../src/backend/cuda/modules.ts';
import { POOLING_MODES } from '../../../src/primitives/pooling.ts';
import { buildPoolingBatch } from '../../../src/runner/pooling-batch.ts';
import { mulberry32 } from '../../../src/util/random.ts';
import { maxAbsDiff } from '../../helpers/paged-session.ts';
import { referencePool, referenceSelfAttention } from '../../helpers/self-attention-reference.ts';

const random = (n: number, seed: number) => {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
};
/** Sequences of 1, 5, 16 and 3 tokens (one token: every mode is that row). */
const LENGTHS = [1, 5, 16, 3];
const batchOf = (lengths: number[]) => buildPoolingBatch(lengths.map((n) => ({ tokenIds: new Array(n).fill(0) })));

for (const mode of POOLING_MODES) {
  test(`pool ${mode}: one row per sequence, as sentence-transformers defines it`, () => {
    const b = new CpuBackend({ threads: 1 });
    const batch = batchOf(LENGTHS);
    const T = batch.inputIds.length;
    const x = random(T * 12, 3);
    const got = b.toHost(b.pool(new CpuTensor([T, 12], x), b.beginStep(batch), mode));
    assert.equal(got.length, LENGTHS.length * 12);
    assert.ok(maxAbsDiff(got, referencePool(x, 12, batch.cuSeqlensQ, mode)) < 1e-6);
  });
}

test('l2Normalize gives unit rows in the same direction; a zero row stays zero', () => {
  const b = new CpuBackend({ threads: 1 });
  const x = random(3 * 7, 5);
  x.fill(0, 7, 14);
  const got = b.toHost(b.l2Normalize(new CpuTensor([3, 7], x)));
  for (const r of [0, 2]) {
    const row = got.subarray(r * 7, r * 7 + 7);
    const norm = Math.hypot(...x.subarray(r * 7, r * 7 + 7));
    assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-6);
    for (const [i, v] of row.entries()) assert.ok(Math.abs(v * norm - x[r * 7 + i]!) < 1e-6);
  }
  assert.deepEqual([...got.subarray(7, 14)], new Array(7).fill(0));
});

test('tanh is elementwise Math.tanh', () => {
  const b = new CpuBackend({ threads: 1 });
  const x = random(10, 9).map((v) => v * 4);
  assert.ok(maxAbsDiff(b.toHost(b.tanh(new CpuTensor([2, 5], x))), x.map(Math.tanh)) < 1e-7);
});

for (const causal of [true, false]) {
  test(`selfAttention (${causal ? 'causal' : 'bidirectional'}) matches the float64 reference: GQA 1 and 2, ragged`, () => {
    const b = new CpuBackend({ threads: 1 });
    for (const [heads, kvHeads, D] of [
      [4, 4, 8],
      [4, 2, 6],
    ] as const) {
      const batch = batchOf([7, 1, 12, 4]);
      const T = batch.inputIds.length;
      const spec = {
        numHeads: heads,
        numKvHeads: kvHeads,
        headDim: D,
        scale: 1 / Math.sqrt(D),
        slidingWindow: 0,
        causal,
      };
      const [q, k, v] = [1, 2, 3].map((s) => random(T * (s === 1 ? heads : kvHeads) * D, s + D)) as [
        Float32Array,
        Float32Array,
        Float32Array,
      ];
      const t = (data: Float32Array) => new CpuTensor([T, data.length / T], data);
      const got = b.toHost(b.selfAttention(t(q), t(k), t(v), spec, b.beginStep(batch)));
      const want = referenceSelfAttention(q, k, v, batch.cuSeqlensQ, spec);
      assert.ok(maxAbsDiff(got, want) < 1e-5, `[${heads}/${kvHeads} x ${D}] differs by ${maxAbsDiff(got, want)}`);
    }
  });
}

test('kernels/pooling.cu numbers the modes in POOLING_MODES order', () => {
  const source = readFileSync(join(kernelsDir, 'pooling.cu'), 'utf8');
  const defined = [...source.matchAll(/#define POOL_(\w+) (\d+)/g)].map((m) => [m[1]!.toLowerCase(), Number(m[2])]);
  assert.deepEqual(
    defined,
    POOLING_MODES.map((m, i) => [m, i]),
  );
});

test('token-type embeddings read batch.tokenTypeIds, zeros when absent', () => {
  const b = new CpuBackend({ threads: 1 });
  const table = b.loadWeight({
    name: 't',
    shape: [2, 2],
    dtype: 'f32',
    bytes: new Uint8Array(Float32Array.of(1, 2, 3, 4).buffer),
  });
  const typed = buildPoolingBatch([{ tokenIds: [5, 6, 7], tokenTypeIds: [0, 1, 1] }]);
  assert.deepEqual([...b.toHost(b.embedding(table, b.beginStep(typed), 'tokenTypes'))], [1, 2, 3, 4, 3, 4]);
  const plain = buildPoolingBatch([{ tokenIds: [5, 6] }]);
  assert.deepEqual([...b.toHost(b.embedding(table, b.beginStep(plain), 'tokenTypes'))], [1, 2, 1, 2]);
});
