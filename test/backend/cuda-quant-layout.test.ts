import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keepsBlocks } from '../../src/backend/cuda/quant-load.ts';
import {
  dequantScratchBytes,
  QUANT_GEMV_MAX_ROWS,
  QuantCudaTensor,
  quantGemvTmax,
  quantLinearPath,
} from '../../src/backend/cuda/quant-tensor.ts';
import type { HostTensor } from '../../src/primitives/host-tensor.ts';

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

test('the dequantization scratch holds the whole weight in the compute type', () => {
  // Llama-3-8B's LM head, the largest matrix of a Q4_K_M file: 128256 x 4096 in bf16 is 1002 MiB.
  assert.equal(dequantScratchBytes([128256, 4096], 'bf16'), 128256 * 4096 * 2);
  assert.equal(dequantScratchBytes([14336 * 2, 4096], 'f16'), 28672 * 4096 * 2);
  assert.equal(dequantScratchBytes([32, 256], 'f32'), 32 * 256 * 4);
});
