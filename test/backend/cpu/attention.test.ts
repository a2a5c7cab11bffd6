import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttentionSpec } from '../../../src/backend/backend.ts';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { pagedOf } from '../../../src/backend/cpu/step-context.ts';
import { CpuTensor } from '../../../src/backend/cpu/tensor.ts';
import { buildStepBatch } from '../../../src/runner/step-batch.ts';
import { maxAbsDiff, shuffled } from '../../helpers/paged-session.ts';

/** A seeded uniform(-1, 1) generator. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
}

/** Textbook attention for one sequence with contiguous k, v `[ctx, Hk, D]`: queries at positions ctx-qLen.. */
function reference(q: Float64Array, k: Float64Array, v: Float64Array, ctx: number, qLen: number, spec: AttentionSpec) {
  const { numHeads: Hq, numKvHeads: Hk, headDim: D, scale, slidingWindow, softcap } = spec;
  const out = new Float64Array(qLen * Hq * D);
  for (let i = 0; i < qLen; i++) {
    const pos = ctx - qLen + i;
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor((h * Hk) / Hq);
      const keys: number[] = [];
      for (let j = 0; j <= pos; j++) if (!slidingWindow || pos - j < slidingWindow) keys.push(j);
      const logits = keys.map((j) => {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[(i * Hq + h) * D + d]! * k[(j * Hk + kh) * D + d]!;
        return softcap ? softcap * Math.tanh((dot * scale) / softcap) : dot * scale;
      });
      const m = Math.max(...logits);
      const w = logits.map((l) => Math.exp(l - m));
      const z = w.reduce((a, b) => a + b, 0);
      keys.forEach((j, n) => {
        for (let d = 0; d < D; d++) out[(i * Hq + h) * D + d]! += (w[n]! / z) * v[(j * Hk + kh) * D + d]!;
      });
    }
  }
  return out;
}

/**
 * Sequences described by [already cached, new this step]. Cached tokens are written in an earlier step; this step
 * writes the new ones and attends. Block tables come from a shuffled pool, so they are non-contiguous.
 */
function check(seqs: [number, number][], spec: AttentionSpec, blockSize: number, seed: number): void {
  const backend = new CpuBackend();
  const { numHeads: Hq, numKvHeads: Hk, headDim: D } = spec;
  const rand = rng(seed);
  const pool = shuffled(64, seed);
  const data = seqs.map(([cached, fresh]) => {
    const ctx = cached + fresh;
    const fill = (n: number) => Float64Array.from({ length: n }, rand);
    const blocks = pool.splice(0, Math.ceil(ctx / blockSize));
    return { cached, fresh, ctx, blocks, k: fill(ctx * Hk * D), v: fill(ctx * Hk * D), q: fill(fresh * Hq * D) };
  });
  const cache = backend.allocKvCache({ numLayers: 1, numBlocks: 64, blockSize, numKvHeads: Hk, headDim: D })[0]!;
  const rows = (x: Float64Array, from: number, to: number) => Array.from(x.subarray(from * Hk * D, to * Hk * D));
  const write = (part: 'cached' | 'fresh') => {
    const chunks = data.map((s) => {
      const [from, to] = part === 'cached' ? [0, s.cached] : [s.cached, s.ctx];
      return { tokenIds: new Array(to - from).fill(0), startPos: from, blockTable: s.blocks, logits: 'none' as const };
    });
    const batch = buildStepBatch(chunks, blockSize);
    const kv = (which: 'k' | 'v') =>
      new CpuTensor(
        [batch.inputIds.length, Hk * D],
        Float32Array.from(
          data.flatMap((s) => (part === 'cached' ? rows(s[which], 0, s.cached) : rows(s[which], s.cached, s.ctx))),
        ),
      );
    const step = backend.beginStep(batch);
    backend.writeKv(kv('k'), kv('v'), cache, step);
    return step;
  };
  write('cached');
  const step = write('fresh');
  const q = new CpuTensor([step.batch.inputIds.length, Hq * D], Float32Array.from(data.flatMap((s) => [...s.q])));
  const got = backend.toHost(backend.attention(q, cache, spec, step));
  let t = 0;
  data.forEach((s, n) => {
    const want = reference(s.q, s.k, s.v, s.ctx, s.fresh, spec);
    const mine = got.subarray(t * Hq * D, (t + s.fresh) * Hq * D);
    assert.ok(
      maxAbsDiff(mine, want) < 1e-5,
      `sequence ${n} [${s.cached} + ${s.fresh}] differs by ${maxAbsDiff(mine, want)}`,
    );
    t += s.fresh;
  });
}

// Prefill from scratch, decode, a chunk crossing block boundaries, a decode exactly at a block boundary, one token.
const RAGGED: [number, number][] = [
  [0, 7],
  [9, 1],
  [3, 6],
  [4, 1],
  [0, 1],
  [11, 5],
];

for (const group of [1, 2, 4]) {
  test(`paged attention matches the reference: GQA group ${group}, ragged batch, block sizes 1, 4 and 16`, () => {
    const spec = { numHeads: 4, numKvHeads: 4 / group, headDim: 8, scale: 1 / Math.sqrt(8), slidingWindow: 0 };
    for (const bs of [1, 4, 16]) check(RAGGED, spec, bs, 7 + bs + group);
  });
}

test('head dims off the unrolled widths (6, 12) take the remainder loops', () => {
  for (const headDim of [6, 12]) {
    check(RAGGED, { numHeads: 4, numKvHeads: 2, headDim, scale: 1 / Math.sqrt(headDim), slidingWindow: 0 }, 4, headDim);
  }
});

test('sliding window: each query sees only the last W keys, itself included', () => {
  for (const slidingWindow of [1, 3, 5]) {
    check(RAGGED, { numHeads: 4, numKvHeads: 2, headDim: 4, scale: 0.5, slidingWindow }, 4, slidingWindow);
  }
});

test('soft-capping: each scaled score s becomes cap * tanh(s / cap) before the softmax', () => {
  // Large scores, so a cap of 0.5 or 2 changes the weights a lot; with sliding windows too (Gemma 2 has both).
  for (const [softcap, slidingWindow] of [
    [0.5, 0],
    [2, 3],
  ] as const) {
    check(RAGGED, { numHeads: 4, numKvHeads: 2, headDim: 8, scale: 3, slidingWindow, softcap }, 4, 11 + softcap);
  }
});

test('a KV write to slot -1 is skipped', () => {
  const backend = new CpuBackend();
  const cache = backend.allocKvCache({ numLayers: 1, numBlocks: 2, blockSize: 2, numKvHeads: 1, headDim: 2 })[0]!;
  const batch = buildStepBatch([{ tokenIds: [0, 0], startPos: 0, blockTable: [1], logits: 'none' }], 2);
  batch.slotMapping[0] = -1;
  const k = new CpuTensor([2, 2], Float32Array.of(1, 2, 3, 4));
  const v = new CpuTensor([2, 2], Float32Array.of(5, 6, 7, 8));
  backend.writeKv(k, v, cache, backend.beginStep(batch));
  // Block 1 holds slots 2 and 3; token 0 (slot 2) was padding, token 1 went to slot 3.
  assert.deepEqual([...pagedOf(cache).k.data], [0, 0, 0, 0, 0, 0, 3, 4]);
  assert.deepEqual([...pagedOf(cache).v.data], [0, 0, 0, 0, 0, 0, 7, 8]);
});

test('copyKvBlocks copies whole blocks of K and V in every layer', () => {
  const backend = new CpuBackend();
  const layers = backend.allocKvCache({ numLayers: 2, numBlocks: 3, blockSize: 2, numKvHeads: 1, headDim: 2 });
  layers.forEach((layer, l) => {
    const batch = buildStepBatch([{ tokenIds: [0, 0, 0], startPos: 0, blockTable: [2, 0], logits: 'none' }], 2);
    const k = new CpuTensor(
      [3, 2],
      Float32Array.of(1, 2, 3, 4, 5, 6).map((x) => x + 10 * l),
    );
    backend.writeKv(
      k,
      new CpuTensor(
        [3, 2],
        k.data.map((x) => -x),
      ),
      layer,
      backend.beginStep(batch),
    );
  });
  backend.copyKvBlocks(layers, Int32Array.of(2), Int32Array.of(1));
  layers.forEach((layer, l) => {
    // block 2 held tokens 0-1, block 0 token 2; block 1 now repeats block 2.
    const want = [5, 6, 0, 0, 1, 2, 3, 4, 1, 2, 3, 4].map((x) => (x ? x + 10 * l : 0));
    assert.deepEqual([...pagedOf(layer).k.data], want);
    assert.deepEqual(
      [...pagedOf(layer).v.data],
      want.map((x) => -x || 0),
    );
  });
});

test('a vocabulary-parallel slice of a table gives its own rows and zeros for ids outside it', () => {
  const backend = new CpuBackend({ threads: 1 });
  // Rows 4..7 of an 8-row table, 2 values each.
  const table = new CpuTensor([4, 2], Float32Array.of(40, 41, 50, 51, 60, 61, 70, 71));
  const batch = buildStepBatch([{ tokenIds: [5, 1, 7, 4], startPos: 0, blockTable: [0], logits: 'none' }], 16);
  const rows = backend.toHost(backend.embedding(table, backend.beginStep(batch), 'tokens', 4));
  assert.deepEqual([...rows], [50, 51, 0, 0, 70, 71, 40, 41]);
  assert.throws(
    () => backend.embedding(table, backend.beginStep(batch), 'tokens'),
    /value 5 outside the table's 4 rows/,
  );
});
