import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttentionSpec } from '../../../src/backend/backend.ts';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { allocPlane, copySlots, type KvPlane, moveHead, rowsOf, writeRows } from '../../../src/backend/cpu/kv-store.ts';
import { pagedOf } from '../../../src/backend/cpu/step-context.ts';
import { CpuTensor } from '../../../src/backend/cpu/tensor.ts';
import { E4M3, e4m3Bits } from '../../../src/primitives/fp8.ts';
import type { KvQuant } from '../../../src/primitives/kv-cache-type.ts';
import { dequantize, quantize } from '../../../src/primitives/quant/index.ts';
import { buildStepBatch } from '../../../src/runner/step-batch.ts';
import { mulberry32 } from '../../../src/util/random.ts';
import { shuffled } from '../../helpers/paged-session.ts';

const TYPES: KvQuant[] = ['fp8', 'q8_0', 'q4_0'];
const [Hk, D] = [2, 32];
const row = Hk * D;

function randomRows(n: number, seed: number, amplitude = 3): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n * row }, () => (r() * 2 - 1) * amplitude);
}

/** Every value of slots 0..n-1, read back as f32. */
function readAll(plane: KvPlane, n: number): Float32Array {
  const slots = Int32Array.from({ length: n }, (_, i) => i);
  const rowBase = new Int32Array(n);
  const data = rowsOf(plane, slots, 0, n - 1, row, 0, Hk, D, rowBase, { values: new Float32Array(0) });
  const out = new Float32Array(n * row);
  for (let j = 0; j < n; j++) out.set(data.subarray(rowBase[j]!, rowBase[j]! + row), j * row);
  return out;
}

test('each KV cache type reads back what its format stores: f32 exactly, fp8 and ggml blocks as encoded', () => {
  const n = 12;
  const x = randomRows(n, 1);
  const slotMapping = Int32Array.from({ length: n }, (_, i) => i);
  const f32 = allocPlane('f32', n, row, false);
  writeRows(f32, x, slotMapping, row);
  assert.deepEqual(readAll(f32, n), x);
  for (const scale of [1, 0.25]) {
    const fp8 = allocPlane('fp8', n, row, false, scale);
    writeRows(fp8, x, slotMapping, row);
    assert.deepEqual(
      readAll(fp8, n),
      Float32Array.from(x, (v) => E4M3[e4m3Bits(v / scale)]! * scale),
    );
  }
  for (const type of ['q8_0', 'q4_0'] as const) {
    const plane = allocPlane(type, n, row, false);
    writeRows(plane, x, slotMapping, row);
    const got = readAll(plane, n);
    assert.deepEqual(got, dequantize(type, quantize(type, x), x.length));
    // Within half a step of each block's scale (q4_0's clamped end: one step), plus the scale's rounding to a half.
    for (let b = 0; b < x.length; b += 32) {
      const amax = Math.max(...x.subarray(b, b + 32).map(Math.abs));
      const step = type === 'q8_0' ? amax / 127 / 2 : amax / 8;
      for (let i = b; i < b + 32; i++)
        assert.ok(Math.abs(got[i]! - x[i]!) <= step + amax * 2 ** -10, `${type} value ${i}`);
    }
  }
});

test('rows go to their slots (padding skipped); block copies and head moves carry the stored bytes', () => {
  for (const type of TYPES) {
    const plane = allocPlane(type, 8, row, false);
    const x = randomRows(3, 2);
    writeRows(plane, x, Int32Array.of(5, -1, 2), row);
    const all = readAll(plane, 8);
    const stored = (j: number) => all.subarray(j * row, (j + 1) * row);
    assert.ok(stored(0).every((v) => v === 0) && stored(1).every((v) => v === 0), `${type}: untouched slots`);
    assert.ok(stored(5).some((v) => v !== 0) && stored(2).some((v) => v !== 0), `${type}: written slots`);
    copySlots(plane, 4, 0, 2, row); // slots 4, 5 -> 0, 1
    const copied = readAll(plane, 8);
    assert.deepEqual(copied.subarray(row, 2 * row), stored(5), `${type}: slot 5 copied to 1`);
    moveHead(plane, 2, 7, 1, D, row); // head 1 of slot 2 -> slot 7
    const moved = readAll(plane, 8);
    assert.deepEqual(moved.subarray(7 * row + D, 8 * row), stored(2).subarray(D), `${type}: head 1 moved`);
    assert.ok(
      moved.subarray(7 * row, 7 * row + D).every((v) => v === 0),
      `${type}: head 0 of slot 7 untouched`,
    );
  }
});

/**
 * Attention over a quantized cache equals attention over an f32 cache that holds the dequantized values, bit for
 * bit, with one thread and with the heads split over worker threads: the quantized cache changes only what is stored.
 */
test('paged attention over a quantized cache equals attention over its dequantized values, threaded or not (LSE too)', () => {
  const spec: AttentionSpec = { numHeads: 6, numKvHeads: Hk, headDim: D, scale: 1 / Math.sqrt(D), slidingWindow: 0 };
  const bs = 4;
  // [cached, new] per sequence: 7,077 query-key pairs, enough work for the backend to split over its threads.
  const seqs = [
    [0, 40],
    [100, 1],
    [200, 24],
  ] as const;
  const pool = shuffled(128, 5);
  const chunks = seqs.map(([cached, fresh]) => ({
    tokenIds: new Array(cached + fresh).fill(0),
    startPos: 0,
    blockTable: pool.splice(0, Math.ceil((cached + fresh) / bs)),
    logits: 'none' as const,
  }));
  const write = buildStepBatch(chunks, bs);
  const T = write.slotMapping.length;
  const k = randomRows(T, 3);
  const v = randomRows(T, 4);
  const attend = buildStepBatch(
    seqs.map(([cached, fresh], s) => ({
      tokenIds: new Array(fresh).fill(0),
      startPos: cached,
      blockTable: chunks[s]!.blockTable,
      logits: 'none' as const,
    })),
    bs,
  );
  const q = new CpuTensor([attend.slotMapping.length, 6 * D], randomRows(attend.slotMapping.length * 3, 6));
  const lseOf = new Map<string, Float32Array>();
  for (const threads of [1, 3]) {
    for (const quant of TYPES) {
      const backend = new CpuBackend({ threads });
      const kv = { numLayers: 1, numBlocks: 128, blockSize: bs, numKvHeads: Hk, headDim: D };
      const quantized = backend.allocKvCache({ ...kv, quant })[0]!;
      backend.writeKv(new CpuTensor([T, row], k), new CpuTensor([T, row], v), quantized, backend.beginStep(write));
      const plain = backend.allocKvCache(kv)[0]!;
      const slots = 128 * bs;
      pagedOf(plain).k.data.set(readAll(pagedOf(quantized).k, slots));
      pagedOf(plain).v.data.set(readAll(pagedOf(quantized).v, slots));
      const got = backend.toHost(backend.attention(q, quantized, spec, backend.beginStep(attend)));
      const want = backend.toHost(backend.attention(q, plain, spec, backend.beginStep(attend)));
      assert.deepEqual(got, want, `${quant}, ${threads} thread(s)`);
      assert.ok(got.every(Number.isFinite));
      // With each row's log-sum-exp (SnapKV's prefill): the same output, and the same LSE on any thread count.
      const withLse = backend.attentionWithLse(q, quantized, spec, backend.beginStep(attend));
      assert.deepEqual(backend.toHost(withLse.out), got, `${quant}, ${threads} thread(s), with LSE`);
      const lse = backend.toHost(withLse.lse);
      assert.ok(lse.every(Number.isFinite));
      if (threads === 1) lseOf.set(quant, lse);
      else assert.deepEqual(lse, lseOf.get(quant), `${quant}: LSE on ${threads} threads`);
    }
  }
});
