import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dequantizedOnHost, keepsBlocks } from '../../src/backend/cuda/quant-load.ts';
import {
  dequantScratchBytes,
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

test('quantized 2-D weights and expert stacks stay in blocks; 1-D, transposed and float weights do not', () => {
  assert.equal(keepsBlocks(host([64, 256], 'q4_k'), false), true);
  assert.equal(keepsBlocks(host([64, 256], 'q4_k'), true), false);
  assert.equal(keepsBlocks(host([256], 'q8_0'), false), false);
  assert.equal(keepsBlocks(host([4, 64, 256], 'q4_k'), false), true);
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
