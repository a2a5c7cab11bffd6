import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { partRange } from '../../../src/backend/cpu/job-layout.ts';
import { CpuTensor } from '../../../src/backend/cpu/tensor.ts';
import { CpuThreads } from '../../../src/backend/cpu/threads.ts';
import { buildStepBatch } from '../../../src/runner/step-batch.ts';

const f32 = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));

test('output columns split into parts cover every column once, in blocks of 8', () => {
  for (const [m, parts] of [
    [1000, 3],
    [17, 4],
    [8, 2],
    [4096, 8],
  ] as const) {
    const seen = new Array(m).fill(0);
    for (let p = 0; p < parts; p++) {
      const [start, end] = partRange(m, parts, p);
      assert.ok(start % 8 === 0 || start === m);
      for (let o = start; o < end; o++) seen[o]++;
    }
    assert.ok(
      seen.every((c) => c === 1),
      `m ${m} parts ${parts}`,
    );
  }
});

test('linear split over worker threads gives exactly the single-thread result', () => {
  const one = new CpuBackend({ threads: 1 });
  const three = new CpuBackend({ threads: 3 });
  for (const [T, n, m] of [
    [1, 512, 1000],
    [5, 300, 333],
    [2, 1024, 520],
  ] as const) {
    const host = {
      name: 'w',
      shape: [m, n],
      dtype: 'f32' as const,
      bytes: new Uint8Array(f32(m * n, Math.sin).buffer),
    };
    const bias = new CpuTensor(
      [m],
      f32(m, (i) => i / m),
    );
    const x = new CpuTensor([T, n], f32(T * n, Math.cos));
    const want = one.toHost(one.linear(x, one.loadWeight(host), bias));
    const w3 = three.loadWeight(host);
    // Twice: the second call reuses the weight the workers already know and the grown scratch buffers.
    for (let r = 0; r < 2; r++)
      assert.deepEqual(three.toHost(three.linear(x, w3, bias)), want, `[${T}, ${n}] x [${m}, ${n}]`);
  }
});

test('paged attention split over worker threads by query heads gives exactly the single-thread result', () => {
  const spec = { numHeads: 6, numKvHeads: 2, headDim: 32, scale: 1 / Math.sqrt(32), slidingWindow: 0 };
  const kvWidth = spec.numKvHeads * spec.headDim;
  // A 40-token prefill beside a decode at position 100, block size 4, scattered blocks.
  const chunks = [
    {
      tokenIds: new Array(40).fill(0),
      startPos: 0,
      blockTable: [...Array(10).keys()].reverse(),
      logits: 'none' as const,
    },
    { tokenIds: [0], startPos: 100, blockTable: [...Array(26).keys()].map((b) => b + 10), logits: 'none' as const },
  ];
  const history = buildStepBatch([{ ...chunks[1]!, tokenIds: new Array(100).fill(0), startPos: 0 }], 4);
  const batch = buildStepBatch(chunks, 4);
  const outputs = [1, 3].map((threads) => {
    const b = new CpuBackend({ threads });
    const [cache] = b.allocKvCache({ numLayers: 1, numBlocks: 40, blockSize: 4, numKvHeads: 2, headDim: 32 });
    const kv = (rows: number, seed: number) =>
      new CpuTensor(
        [rows, kvWidth],
        f32(rows * kvWidth, (i) => Math.sin(i * seed)),
      );
    b.writeKv(kv(100, 0.1), kv(100, 0.2), cache!, b.beginStep(history));
    const step = b.beginStep(batch);
    b.writeKv(kv(41, 0.3), kv(41, 0.4), cache!, step);
    const q = new CpuTensor(
      [41, 6 * 32],
      f32(41 * 6 * 32, (i) => Math.cos(i * 0.7)),
    );
    return [
      b.toHost(b.attention(q, cache!, spec, step)),
      b.toHost(b.attention(q, cache!, { ...spec, slidingWindow: 7 }, step)),
      b.toHost(b.attention(q, cache!, { ...spec, softcap: 0.5 }, step)),
    ];
  });
  assert.deepEqual(outputs[1], outputs[0]);
  assert.notDeepEqual(outputs[0]![2], outputs[0]![0], 'the workers received the soft-cap');
});

test('sixteen workers starting together all start: each sets and clears a process-wide V8 flag in turn', async () => {
  // Without the turn one worker could clear the flag between another's set and its use (seen on a 16-core machine).
  const errors: unknown[] = [];
  const record = (e: unknown) => errors.push(e);
  process.on('uncaughtException', record);
  try {
    const pool = CpuThreads.get(16);
    const deadline = Date.now() + 120_000;
    while (!pool.started() && errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(errors.map(String), []);
    assert.ok(pool.started(), 'every worker reported ready');
  } finally {
    process.off('uncaughtException', record);
  }
});
