import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dequantizedOnHost, keepsBlocks } from '../../src/backend/cuda/quant-load.ts';
import {
  dequantScratchBytes,
  type OverlapStep,
  overlapSchedule,
  QUANT_GEMV_MAX_ROWS,
  QUANT_SCRATCH_BYTES,
  QuantCudaTensor,
  quantGemvTmax,
  quantLinearPath,
  scratchRows,
  scratchRuns,
} from '../../src/backend/cuda/quant-tensor.ts';
import { type HostTensor, toFloat32 } from '../../src/primitives/host-tensor.ts';
import { quantize } from '../../src/primitives/quant/index.ts';

const host = (shape: number[], dtype: HostTensor['dtype']): HostTensor => ({
  name: 'w',
  shape,
  dtype,
  bytes: new Uint8Array(0),
});

test('quantized 2-D weights stay in blocks; 1-D, 3-D, transposed and float weights do not', () => {
  assert.equal(keepsBlocks(host([64, 256], 'q4_k'), false), true);
  assert.equal(keepsBlocks(host([64, 256], 'q4_k'), true), false);
  assert.equal(keepsBlocks(host([256], 'q8_0'), false), false);
  assert.equal(keepsBlocks(host([4, 64, 256], 'q4_k'), false), false);
  assert.equal(keepsBlocks(host([64, 256], 'bf16'), false), false);
});

test('a stacked quantized weight: parts in row order, each writing from its first row, its blocks counted', () => {
  const t = new QuantCudaTensor([4096 + 1024 + 1024, 4096], 'bf16', [
    { type: 'q4_k', rows: 5120, ptr: 1n << 20n, rowBytes: 16 * 144 },
    { type: 'q6_k', rows: 1024, ptr: 1n << 30n, rowBytes: 16 * 210 },
  ]);
  assert.deepEqual(t.firstRows, [0, 5120]);
  assert.equal(t.byteLength, 5120 * 16 * 144 + 1024 * 16 * 210);
});

test('decode rows (up to 8) take the GEMV, built for the next power of two; more dequantize into the scratch', () => {
  assert.equal(QUANT_GEMV_MAX_ROWS, 8);
  assert.deepEqual(
    [1, 2, 3, 5, 8, 9, 37, 512].map((r) => quantLinearPath(r)),
    ['gemv', 'gemv', 'gemv', 'gemv', 'gemv', 'dequantize', 'dequantize', 'dequantize'],
  );
  assert.deepEqual(
    [1, 2, 3, 4, 5, 7, 8].map((r) => quantGemvTmax(r)),
    [1, 2, 4, 4, 8, 8, 8],
  );
  assert.throws(() => quantGemvTmax(9), /9 rows, built for 1 to 8/);
  assert.throws(() => quantGemvTmax(0), /0 rows/);
});

test('the dequantization scratch holds one run of rows (64 MiB), or a smaller weight whole', () => {
  assert.equal(QUANT_SCRATCH_BYTES, 64 << 20);
  // Llama-3-8B's LM head (1002 MiB in bf16) goes through in runs of 8192 rows of 4096 columns.
  assert.equal(scratchRows(4096, 'bf16'), 8192);
  assert.equal(dequantScratchBytes([128256, 4096], 'bf16'), 64 << 20);
  // Its down projection: 14336 columns, 2340 rows fit a run, rounded down to 2304 so that every run's output columns
  // start 256 bytes apart (cuBLASLt's algorithms assume aligned outputs).
  assert.equal(scratchRows(14336, 'bf16'), 2304);
  assert.equal(scratchRows(14336, 'f32'), 1152);
  assert.equal(dequantScratchBytes([4096, 14336], 'bf16'), 2304 * 14336 * 2);
  assert.equal(dequantScratchBytes([32, 256], 'f32'), 32 * 256 * 4);
  // A row wider than a run still takes one row at a time.
  assert.equal(scratchRows(1 << 24, 'f32'), 1);
  assert.equal(dequantScratchBytes([3, 1 << 24], 'f32'), 1 << 26);
});

test('scratch runs cover every row of every part once, in output column order, never crossing a part', () => {
  const parts = [
    { type: 'q4_k' as const, rows: 5120, ptr: 0n, rowBytes: 16 * 144 },
    { type: 'q6_k' as const, rows: 1024, ptr: 0n, rowBytes: 16 * 210 },
  ];
  // Runs of 32 MiB: 4096 rows of 4096 columns.
  assert.deepEqual(scratchRuns({ parts, shape: [6144, 4096] }, 'bf16', 32 << 20), [
    { part: 0, row: 0, rows: 4096 },
    { part: 0, row: 4096, rows: 1024 },
    { part: 1, row: 0, rows: 1024 },
  ]);
  // Runs of 40 rows (a test's setting) over parts of 64, 32 and 8 rows.
  const small = [64, 32, 8].map((rows) => ({ type: 'q8_0' as const, rows, ptr: 0n, rowBytes: 34 * 16 }));
  assert.deepEqual(
    scratchRuns({ parts: small, shape: [104, 512] }, 'bf16', 40 * 512 * 2).map((r) => [r.part, r.row, r.rows]),
    [
      [0, 0, 40],
      [0, 40, 24],
      [1, 0, 32],
      [2, 0, 8],
    ],
  );
});

test('weights the CUDA backend keeps in neither blocks nor FP8 go up as f32 dequantized on the host; others as stored', () => {
  const codes = Uint8Array.from([0x38, 0xb8, 0x40, 0x00, 0x30, 0x3c]); // e4m3: 1, -1, 2, 0, 0.5, 1.5
  const fp8: HostTensor = {
    name: 'w',
    shape: [2, 3],
    dtype: 'f8_e4m3',
    bytes: codes,
    rowScales: Float32Array.from([2, 0.25]),
  };
  const got = dequantizedOnHost(fp8)!;
  assert.equal(got.dtype, 'f32');
  assert.deepEqual(new Float32Array(got.bytes.buffer), Float32Array.from([2, -2, 4, 0, 0.125, 0.375]));
  const norm: HostTensor = {
    name: 'n',
    shape: [32],
    dtype: 'q8_0',
    bytes: quantize('q8_0', new Float32Array(32).fill(0.5)),
  };
  assert.deepEqual(new Float32Array(dequantizedOnHost(norm)!.bytes.buffer), toFloat32(norm));
  assert.equal(dequantizedOnHost({ name: 'b', shape: [4], dtype: 'bf16', bytes: new Uint8Array(8) }), null);
  assert.equal(dequantizedOnHost({ name: 'd', shape: [32], dtype: 'q8_0', bytes: new Uint8Array(0) }), null, 'a dummy');
});

/**
 * The overlapped prefill path's order as the device sees it: each stream runs its steps in queue order (the stream
 * each step names, as QuantLinear issues it), a wait follows the last record of its event queued before it, and the
 * fork is the stream's record followed by the side stream's wait. Returns whether step a happens before step b.
 */
function happensBefore(steps: readonly OverlapStep[]): (a: number, b: number) => boolean {
  const edges = steps.map(() => [] as number[]);
  const lastOn = new Map<string, number>();
  const lastRecord = new Map<string, number>();
  steps.forEach((s, i) => {
    const on = s.op === 'fork' ? 'main' : s.stream;
    const prev = lastOn.get(on);
    if (prev !== undefined) edges[prev]!.push(i);
    lastOn.set(on, i);
    if (s.op === 'fork') lastOn.set('side', i);
    if (s.op === 'record') lastRecord.set(`${s.event} ${s.buffer}`, i);
    if (s.op === 'wait') {
      const r = lastRecord.get(`${s.event} ${s.buffer}`);
      if (r !== undefined) edges[r]!.push(i);
    }
  });
  return (a, b) => {
    const seen = new Set<number>([a]);
    const todo = [a];
    while (todo.length) {
      for (const n of edges[todo.pop()!]!) {
        if (seen.has(n)) continue;
        seen.add(n);
        todo.push(n);
      }
    }
    return a !== b && seen.has(b);
  };
}

test('the overlapped prefill path: each GEMM after its dequantization, a buffer refilled only after its GEMM, the next dequantization beside this GEMM, the side stream joined back', () => {
  for (const runs of [1, 2, 3, 7]) {
    const steps = overlapSchedule(runs);
    const before = happensBefore(steps);
    const at = (op: 'dequantize' | 'gemm', run: number) => steps.findIndex((s) => s.op === op && s.run === run);
    for (let run = 0; run < runs; run++) {
      assert.ok(before(at('dequantize', run), at('gemm', run)), `${runs} runs: GEMM ${run} after its dequantization`);
      if (run >= 2)
        assert.ok(before(at('gemm', run - 2), at('dequantize', run)), `${runs} runs: buffer of run ${run} free`);
      if (run + 1 < runs) {
        const [d, g] = [at('dequantize', run + 1), at('gemm', run)];
        assert.ok(!before(d, g) && !before(g, d), `${runs} runs: dequantization ${run + 1} beside GEMM ${run}`);
      }
      const step = steps[at('dequantize', run)]!;
      assert.ok(step.op === 'dequantize' && step.buffer === run % 2);
    }
    // Joined: every side-stream step happens before the stream's last step (a capture could end there).
    const lastMain = steps.reduce((last, s, i) => (s.op === 'fork' || s.stream === 'main' ? i : last), -1);
    steps.forEach((s, i) => {
      if (s.op !== 'fork' && s.stream === 'side') assert.ok(before(i, lastMain), `${runs} runs: side step ${i} joined`);
    });
    assert.equal(steps[0]!.op, 'fork');
  }
});
