import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { cpu } from '../../../src/backend/cpu/tensor.ts';
import { CpuThreads, MIN_PARALLEL_MACS, sharedFloat32 } from '../../../src/backend/cpu/threads.ts';
import { FILL_CHUNK, fillValues, runsOf } from '../../../src/backend/cpu/weight-fill.ts';
import { openSafetensors } from '../../../src/loader/safetensors.ts';
import { bf16Bits, f16Bits } from '../../../src/primitives/float-bits.ts';
import { type DType, type HostTensor, toFloat32 } from '../../../src/primitives/host-tensor.ts';
import { concatHostTensors, fileExtentsOf, type LazyHostTensor } from '../../../src/primitives/lazy-tensor.ts';
import { mulberry32 } from '../../../src/util/random.ts';

const THREADS = 3;

/** Tensors of every stored float type, large enough for the pool and several chunks, with ends mid-chunk. */
const TENSORS: { name: string; shape: [number, number]; dtype: DType }[] = [
  { name: 'f32', shape: [601, 1003], dtype: 'f32' },
  { name: 'bf16', shape: [700, 999], dtype: 'bf16' },
  { name: 'f16', shape: [301, 1001], dtype: 'f16' },
  { name: 'small', shape: [7, 5], dtype: 'bf16' },
  { name: 'q', shape: [333, 1000], dtype: 'bf16' },
  { name: 'k', shape: [111, 1000], dtype: 'bf16' },
  { name: 'v', shape: [222, 1000], dtype: 'bf16' },
];

/** Random values of `t` as stored (f32 values, or their 16-bit encodings). */
function storedBytes(t: (typeof TENSORS)[number], seed: number): Uint8Array {
  const rnd = mulberry32(seed);
  const n = t.shape[0] * t.shape[1];
  const values = Float32Array.from({ length: n }, () => (rnd() - 0.5) * 8);
  if (t.dtype === 'f32') return new Uint8Array(values.buffer);
  const encode = t.dtype === 'bf16' ? bf16Bits : f16Bits;
  return new Uint8Array(Uint16Array.from(values, encode).buffer);
}

/** A safetensors file of TENSORS (an odd-length header, so some tensors start unaligned in the file). */
function writeCheckpoint() {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-fill-'));
  const header: Record<string, unknown> = {};
  const expected = new Map<string, HostTensor>();
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [i, t] of TENSORS.entries()) {
    const bytes = storedBytes(t, i + 1);
    header[t.name] = { dtype: t.dtype.toUpperCase(), shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    expected.set(t.name, { name: t.name, shape: t.shape, dtype: t.dtype, bytes });
    blobs.push(bytes);
    offset += bytes.length;
  }
  const json = Buffer.from(`${JSON.stringify(header)} `);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(join(dir, 'model.safetensors'), Buffer.concat([len, json, ...blobs]));
  return { dir, expected };
}

const same = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Waits (blocking, as a load does) until the pool's workers have started. */
function startedPool(): CpuThreads {
  const pool = CpuThreads.get(THREADS);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 600 && !pool.started(); i++) Atomics.wait(nap, 0, 0, 50);
  assert.ok(pool.started(), 'the worker threads start');
  return pool;
}

test('weights filled from their file runs (one thread, or the pool) equal toFloat32 of the bytes, bit for bit', () => {
  const { dir, expected } = writeCheckpoint();
  const source = openSafetensors(dir);
  try {
    const pool = startedPool();
    for (const t of TENSORS.slice(0, 3)) {
      const want = toFloat32(expected.get(t.name)!);
      const extents = fileExtentsOf(source.get(t.name))!;
      assert.ok(want.length > FILL_CHUNK && want.length % FILL_CHUNK !== 0, 'several chunks, the last one short');
      const alone = new Float32Array(want.length).fill(Number.NaN);
      fillValues(runsOf(extents), extents.length, t.dtype, alone, 0, want.length);
      assert.ok(same(alone, want), `${t.name} on one thread`);
      // From a value mid-chunk, as a load hands a weight to the pool once its workers have started.
      for (const from of [0, FILL_CHUNK + 1001]) {
        const shared = sharedFloat32(want.length).fill(Number.NaN);
        pool.fill(shared, t.dtype, extents, from);
        assert.ok(same(shared.subarray(from), want.subarray(from)), `${t.name} over the pool from value ${from}`);
        assert.ok(shared.subarray(0, from).every(Number.isNaN), 'values before `from` are left alone');
      }
    }
  } finally {
    source.close();
    rmSync(dir, { recursive: true });
  }
});

test('a CPU backend loads file-backed weights, packed ones across their parts, as toFloat32 converts them', () => {
  const { dir, expected } = writeCheckpoint();
  const source = openSafetensors(dir);
  const qkv = ['q', 'k', 'v'];
  const packed = (get: (name: string) => HostTensor) =>
    concatHostTensors('qkv', [666, 1000], 'bf16', qkv.map(get)) as HostTensor;
  try {
    startedPool();
    for (const threads of [1, THREADS]) {
      const b = new CpuBackend({ threads });
      for (const t of TENSORS) {
        const got = cpu(b.loadWeight(source.get(t.name))).data;
        assert.ok(same(got, toFloat32(expected.get(t.name)!)), `${t.name}, ${threads} thread(s)`);
      }
      const got = cpu(b.loadWeight(packed((n) => source.get(n)))).data;
      assert.ok(got.length >= MIN_PARALLEL_MACS);
      assert.ok(same(got, toFloat32(packed((n) => expected.get(n)!))), `packed q/k/v, ${threads} thread(s)`);
      b.release();
    }
  } finally {
    source.close();
    rmSync(dir, { recursive: true });
  }
});

test("a tensor's file runs: its own range, its parts' in order when packed, none once read or closed", () => {
  const { dir } = writeCheckpoint();
  const source = openSafetensors(dir);
  try {
    const [q, k] = [source.get('q') as LazyHostTensor, source.get('k') as LazyHostTensor];
    const [runQ, runK] = [q.fileExtents()![0]!, k.fileExtents()![0]!];
    assert.equal(runQ.length, 333 * 1000 * 2);
    assert.equal(runK.position, runQ.position + runQ.length, 'k follows q in the file');
    assert.deepEqual(fileExtentsOf(concatHostTensors('qk', [444, 1000], 'bf16', [q, k])), [runQ, runK]);
    const inMemory: HostTensor = { ...k, name: 'k copy' };
    assert.equal(fileExtentsOf(concatHostTensors('qk', [444, 1000], 'bf16', [q, inMemory])), null);
    void k.bytes;
    assert.equal(k.fileExtents(), null, 'read: its bytes are in memory');
    source.close();
    assert.throws(() => q.fileExtents(), /read after its file was closed/);
  } finally {
    source.close();
    rmSync(dir, { recursive: true });
  }
});

test('a fill whose file is gone fails with the reason; the pool waits for its workers and its next jobs succeed', () => {
  const { dir, expected } = writeCheckpoint();
  const source = openSafetensors(dir);
  try {
    const pool = startedPool();
    const want = toFloat32(expected.get('f32')!);
    const shared = sharedFloat32(want.length).fill(Number.NaN);
    // A descriptor no file has: every thread's reads fail, the workers' and this thread's alike.
    const gone = [{ fd: 1 << 20, position: 0, length: want.length * 4 }];
    assert.throws(() => pool.fill(shared, 'f32', gone), /file descriptor|worker thread failed/);
    pool.fill(shared, 'f32', fileExtentsOf(source.get('f32'))!);
    assert.ok(same(shared, want), 'the next job on the same pool fills every value');
  } finally {
    source.close();
    rmSync(dir, { recursive: true });
  }
});
