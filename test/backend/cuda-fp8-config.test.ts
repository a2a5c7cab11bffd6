import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostTensor } from '../../src/backend/backend.ts';
import { fp8Bytes, fp8Fits, storesFp8 } from '../../src/backend/cuda/fp8.ts';
import { FP8_GEMV_MAX_ROWS, fp8Path } from '../../src/backend/cuda/fp8-linear.ts';

test('a matrix is FP8 on CUDA only when both sides are multiples of 16 (cuBLASLt FP8 layouts, 16-byte GEMV loads)', () => {
  assert.equal(fp8Fits([4096, 14336]), true);
  assert.equal(fp8Fits([344, 64]), false, "stories260K's gate/up: 344 rows");
  assert.equal(fp8Fits([64, 172]), false, "stories260K's down: K = 172");
  assert.equal(fp8Fits([4096]), false, 'a vector (norm, bias)');
  assert.equal(fp8Fits([8, 16, 16]), false, 'stacked experts');
});

test("an FP8 matrix's device bytes: a byte per value and a float per row, each 256-byte aligned", () => {
  assert.equal(fp8Bytes([4096, 4096]), 4096 * 4096 + 4096 * 4);
  assert.equal(fp8Bytes([48, 16]), 768 + 256);
});

test('decode rows up to 8 take the FP8 GEMV, more rows (or the GEMV switched off) the FP8 GEMM', () => {
  assert.equal(FP8_GEMV_MAX_ROWS, 8);
  assert.deepEqual(
    [1, 2, 5, 8, 9, 37].map((rows) => fp8Path(rows, true)),
    ['gemv', 'gemv', 'gemv', 'gemv', 'gemm', 'gemm'],
  );
  assert.equal(fp8Path(1, false), 'gemm');
});

test('FP8 where asked (quantize) or stored (f8_e4m3), never for a transposed weight or a side off the multiples of 16', () => {
  const t = (dtype: HostTensor['dtype'], shape: number[]): HostTensor => ({
    name: 'w',
    shape,
    dtype,
    bytes: new Uint8Array(0),
  });
  assert.equal(storesFp8(t('bf16', [64, 64]), { quantize: 'fp8' }), true);
  assert.equal(storesFp8(t('f8_e4m3', [64, 64])), true, "a checkpoint's codes");
  assert.equal(storesFp8(t('bf16', [64, 64])), false, 'not asked');
  assert.equal(storesFp8(t('bf16', [64, 64]), { quantize: 'fp8', transpose: true }), false, "GPT-2's Conv1D");
  assert.equal(storesFp8(t('f8_e4m3', [64, 172])), false, 'dequantized instead');
});
