import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostTensor, Tensor } from '../../../src/backend/backend.ts';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { ParallelBackend } from '../../../src/backend/parallel/backend.ts';
import { shardHost } from '../../../src/backend/parallel/shard.ts';
import { mulberry32 } from '../../../src/util/random.ts';

/** An f32 host tensor whose element i is `i` (so a share's values name the elements it holds). */
function counting(shape: number[]): HostTensor {
  const n = shape.reduce((a, d) => a * d, 1);
  const values = Float32Array.from({ length: n }, (_, i) => i);
  return { name: 'w', shape, dtype: 'f32', bytes: new Uint8Array(values.buffer) };
}

const values = (h: HostTensor) => Array.from(new Float32Array(h.bytes.slice().buffer));

test('out split: rank r holds rows [r·rows/N, (r+1)·rows/N) of a matrix and of a bias', () => {
  const w = counting([4, 3]);
  assert.deepEqual(shardHost(w, { split: 'out' }, 1, 2).shape, [2, 3]);
  assert.deepEqual(values(shardHost(w, { split: 'out' }, 1, 2)), [6, 7, 8, 9, 10, 11]);
  assert.deepEqual(values(shardHost(counting([4]), { split: 'out' }, 3, 4)), [3]);
});

test('in split: rank r holds columns [r·cols/N, (r+1)·cols/N) of every row', () => {
  const w = counting([2, 4]);
  const share = shardHost(w, { split: 'in' }, 1, 2);
  assert.deepEqual(share.shape, [2, 2]);
  assert.deepEqual(values(share), [2, 3, 6, 7]);
});

test('packed q/k/v: each part split on its own, a rank holding its q heads and their k and v heads', () => {
  // q 4 heads, k and v 2 heads, head size 1: rows q0..q3 = 0..3, k0 k1 = 4 5, v0 v1 = 6 7.
  const qkv = counting([8, 1]);
  const spec = {
    split: 'out' as const,
    parts: [
      { rows: 4, pieces: 2 },
      { rows: 2, pieces: 2 },
      { rows: 2, pieces: 2 },
    ],
  };
  assert.deepEqual(values(shardHost(qkv, spec, 0, 2)), [0, 1, 4, 6]);
  assert.deepEqual(values(shardHost(qkv, spec, 1, 2)), [2, 3, 5, 7]);
});

test('fewer KV heads than ranks: each KV head is replicated on the ranks whose q heads attend through it', () => {
  const qkv = counting([8, 1]);
  const spec = {
    split: 'out' as const,
    parts: [
      { rows: 4, pieces: 4 },
      { rows: 2, pieces: 2 },
      { rows: 2, pieces: 2 },
    ],
  };
  const shares = [0, 1, 2, 3].map((r) => values(shardHost(qkv, spec, r, 4)));
  assert.deepEqual(shares, [
    [0, 4, 6],
    [1, 4, 6],
    [2, 5, 7],
    [3, 5, 7],
  ]);
});

test('first: rank 0 holds the bias, the others zeros of the same shape and dtype; replicate: all of it', () => {
  const b = { ...counting([3]), dtype: 'bf16' as const, bytes: new Uint8Array([1, 2, 3, 4, 5, 6]) };
  assert.equal(shardHost(b, { split: 'first' }, 0, 2), b);
  const zero = shardHost(b, { split: 'first' }, 1, 2);
  assert.deepEqual([zero.shape, zero.dtype, [...zero.bytes]], [[3], 'bf16', [0, 0, 0, 0, 0, 0]]);
  assert.equal(shardHost(b, { split: 'replicate' }, 1, 2), b);
});

test('a weight without bytes (dummy weights) gets a share without bytes in the share shape', () => {
  const w: HostTensor = { name: 'w', shape: [4, 6], dtype: 'bf16', bytes: new Uint8Array(0) };
  const out = shardHost(w, { split: 'out' }, 1, 2);
  const inp = shardHost(w, { split: 'in' }, 1, 2);
  assert.deepEqual([out.shape, out.bytes.length, inp.shape, inp.bytes.length], [[2, 6], 0, [4, 3], 0]);
});

test('shares that cannot be cut evenly are refused', () => {
  assert.throws(() => shardHost(counting([3, 2]), { split: 'out' }, 0, 2), /3 rows cannot be cut into 2 pieces/);
  assert.throws(() => shardHost(counting([2, 3]), { split: 'in' }, 0, 2), /3 columns cannot be split over 2 ranks/);
});

function random(shape: number[], seed: number): HostTensor {
  const rnd = mulberry32(seed);
  const n = shape.reduce((a, d) => a * d, 1);
  const v = Float32Array.from({ length: n }, () => 2 * rnd() - 1);
  return { name: `random ${seed}`, shape, dtype: 'f32', bytes: new Uint8Array(v.buffer) };
}

test('column-parallel linear then allGather, and row-parallel linear then allReduce, equal the whole linear', () => {
  const one = new CpuBackend({ threads: 1 });
  const par = new ParallelBackend([1, 2, 3].map(() => new CpuBackend({ threads: 1 })));
  const x = random([5, 6], 1);
  const w = random([9, 6], 2);
  const bias = random([9], 3);
  const whole = one.toHost(one.linear(one.loadWeight(x), one.loadWeight(w), one.loadWeight(bias)));
  const px = par.loadWeight(x);
  const gathered = par.allGather(
    par.linear(px, par.loadWeight(w, { shard: { split: 'out' } }), par.loadWeight(bias, { shard: { split: 'out' } })),
  );
  assert.deepEqual(gathered.shape, [5, 9]);
  // Rank-local outputs are whole columns, computed exactly as the whole linear computes them.
  assert.deepEqual(par.toHost(gathered), whole);

  const wRow = random([4, 6], 4);
  const biasRow = random([4], 5);
  const wholeRow = one.toHost(one.linear(one.loadWeight(x), one.loadWeight(wRow), one.loadWeight(biasRow)));
  const partial = par.linear(
    par.loadWeight(x, { shard: { split: 'in' } }),
    par.loadWeight(wRow, { shard: { split: 'in' } }),
    par.loadWeight(biasRow, { shard: { split: 'first' } }),
  );
  const sum = par.allReduce(partial) as Tensor & { parts: readonly Tensor[] };
  const reduced = par.toHost(sum);
  assert.equal(reduced.length, wholeRow.length);
  for (let i = 0; i < reduced.length; i++) assert.ok(Math.abs(reduced[i]! - wholeRow[i]!) < 1e-6, `element ${i}`);
  // Every rank holds the sum, not just rank 0.
  for (const r of [1, 2]) assert.deepEqual(par.ranks[r]!.toHost(sum.parts[r]!), reduced);
});

test('quantized weights are refused in one line naming the tensor', () => {
  const par = new ParallelBackend([new CpuBackend({ threads: 1 }), new CpuBackend({ threads: 1 })]);
  const q: HostTensor = { name: 'blk.0.attn_q.weight', shape: [2, 32], dtype: 'q8_0', bytes: new Uint8Array(68) };
  assert.throws(() => par.loadWeight(q), /^UserError: blk\.0\.attn_q\.weight: q8_0 weights cannot be split/);
});
