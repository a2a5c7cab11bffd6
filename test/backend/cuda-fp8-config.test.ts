import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostTensor } from '../../src/backend/backend.ts';
import { fp8Bytes, fp8Fits, storesFp8 } from '../../src/backend/cuda/fp8.ts';
import {
  FP8_GEMV_MAX_ROWS,
  FP8_GEMV_ROUTES,
  fp8GemvBlocks,
  fp8GemvDefines,
  fp8GemvRule,
  fp8RouteFor,
} from '../../src/backend/cuda/fp8-gemv.ts';
import { fp8InputForm, fp8Path } from '../../src/backend/cuda/fp8-linear.ts';
import { fp8CudaCoreGemvRule, gemvBlocks, gemvShape } from '../../src/backend/cuda/gemv-config.ts';
import { fp8CudaCoreGemvDefines } from '../../src/backend/cuda/linear.ts';
import { versionAtLeast } from '../../src/backend/cuda/nvrtc.ts';

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

test('decode rows up to 8 take the FP8 GEMV of either route, more rows (or the GEMV switched off) the FP8 GEMM', () => {
  assert.equal(FP8_GEMV_MAX_ROWS, 8);
  for (const route of FP8_GEMV_ROUTES)
    assert.deepEqual(
      [1, 2, 5, 8, 9, 37].map((rows) => fp8Path(rows, route)),
      ['gemv', 'gemv', 'gemv', 'gemv', 'gemm', 'gemm'],
    );
  assert.equal(fp8Path(1, null), 'gemm');
});

test("x's producers write e4m3 for the FP8 GEMM and the tensor-core GEMV, nothing for the CUDA-core GEMV's rows", () => {
  assert.deepEqual(
    [1, 8, 9, 37].map((rows) => fp8InputForm(rows, 'cuda-cores')),
    [null, null, 'e4m3', 'e4m3'],
  );
  assert.deepEqual(
    [1, 8, 9].map((rows) => fp8InputForm(rows, 'tensor-cores')),
    ['e4m3', 'e4m3', 'e4m3'],
  );
  assert.equal(fp8InputForm(1, null), 'e4m3', 'the GEMV off: the GEMM reads e4m3');
});

test("the CUDA-core FP8 GEMV's builds: gemv.cu's defines with WFP8, split by K, every group of output features launched", () => {
  for (const [k, split] of [
    [4096, 4],
    [14336, 8],
  ] as const) {
    const shape = gemvShape(3, 6144, k, false);
    const cfg = fp8CudaCoreGemvRule(shape);
    assert.deepEqual(cfg, { split, rows: 2, unroll: 4 });
    assert.deepEqual(fp8CudaCoreGemvDefines(shape, cfg), { TMAX: 4, SPLIT: split, ROWS: 2, WFP8: 1 });
    // 6144 outputs in pairs, `split` warps a pair, 8 warps a block.
    assert.equal(gemvBlocks(shape, cfg), (6144 / 2) * (split / 8));
  }
  const gated = gemvShape(1, 14336, 4096, true);
  const cfg = fp8CudaCoreGemvRule(gated);
  assert.deepEqual(fp8CudaCoreGemvDefines(gated, cfg, 'gelu_tanh'), { TMAX: 1, SPLIT: 4, GATED: 1, ACT: 1, WFP8: 1 });
  assert.equal(gemvBlocks(gated, cfg), (14336 * 4) / 8, 'one gate/up pair per group');
  const wide = { split: 1, rows: 4, unroll: 4 };
  assert.equal(gemvBlocks(gemvShape(1, 1048, 4096, false), wide), 33, '262 groups of 4 rows: a ragged last block');
});

test("the FP8 GEMV's builds: tiles of 16 rows (gated: a gate and an up tile), every output feature's tile launched", () => {
  const plain = fp8GemvRule(false);
  const gated = fp8GemvRule(true);
  assert.deepEqual(fp8GemvDefines(plain, false), { SPLIT: plain.split, UNROLL: plain.unroll, TILES: plain.tiles });
  assert.deepEqual(fp8GemvDefines(gated, true, 'gelu_tanh'), {
    SPLIT: gated.split,
    UNROLL: gated.unroll,
    GATED: 1,
    ACT: 1,
  });
  assert.deepEqual(fp8GemvDefines(gated, true, 'silu'), { SPLIT: gated.split, UNROLL: gated.unroll, GATED: 1 });
  // Eight warps a block, `split` of them per group of `tiles` x 16 rows (gated: 16 outputs, 32 weight rows).
  const cfg = { split: 4, tiles: 2, unroll: 2 };
  assert.equal(fp8GemvBlocks(6144, false, cfg), 96);
  assert.equal(fp8GemvBlocks(1040, false, cfg), 17, 'a ragged last group of 16 rows of 32');
  assert.equal(fp8GemvBlocks(1048, true, cfg), 33, 'gated: 66 groups of 16 outputs, the last one ragged');
  assert.equal(fp8GemvBlocks(4096, false, { split: 1, tiles: 1, unroll: 4 }), 32);
  // Every Llama-3-8B decoder shape fills an H100 / H200's 132 SMs at the rule.
  for (const [n, g] of [
    [6144, false],
    [4096, false],
    [14336, true],
  ] as const)
    assert.ok(fp8GemvBlocks(n, g, fp8GemvRule(g)) >= 256, `${n} outputs${g ? ', gated' : ''}`);
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

test('the FP8 GEMV needs NVRTC 12.4 or later (its e4m3 mma is PTX ISA 8.4); an unparsable version counts as older', () => {
  assert.deepEqual(
    ['12.1', '12.3', '12.4', '12.9', '13.0', 'fake'].map((v) => versionAtLeast(v, 12, 4)),
    [false, false, true, true, true, false],
  );
});

test("'auto' takes the CUDA-core GEMV for one decode row and the tensor-core GEMV from two; a route stays itself", () => {
  assert.deepEqual(
    [1, 2, 8].map((rows) => fp8RouteFor(rows, 'auto')),
    ['cuda-cores', 'tensor-cores', 'tensor-cores'],
  );
  for (const route of FP8_GEMV_ROUTES)
    assert.deepEqual(
      [1, 8].map((rows) => fp8RouteFor(rows, route)),
      [route, route],
    );
  // x's producers follow: nothing for the one row the CUDA cores read as it is, e4m3 for the tensor cores and the GEMM.
  assert.deepEqual(
    [1, 2, 9].map((rows) => fp8InputForm(rows, 'auto')),
    [null, 'e4m3', 'e4m3'],
  );
});
