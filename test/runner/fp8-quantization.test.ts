import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend } from '../../src/backend/backend.ts';
import { prepareModel } from '../../src/runner/load.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const tiny = modelFixture('tiny-llama');

test('--quantization fp8 on the CPU is one line: no FP8 arithmetic there, q8_0 instead', { skip: tiny.skip }, () => {
  assert.throws(
    () => prepareModel(tiny.path, { device: 'cpu', quantization: 'fp8', log: () => {} }),
    /^UserError: --quantization fp8: the CPU backend has no FP8 arithmetic; use --quantization q8_0 for 8-bit weights on the CPU$/,
  );
});

test('--quantization fp8 on CUDA is one line: the FP8 GEMM path is not built, and needs compute capability 8.9', {
  skip: tiny.skip,
}, () => {
  // Refused before the backend is touched, so a stand-in that only names its device is enough.
  const cuda = { name: 'cuda' } as Backend;
  assert.throws(
    () => prepareModel(tiny.path, { backend: cuda, quantization: 'FP8', log: () => {} }),
    /^UserError: --quantization FP8: the CUDA backend's FP8 GEMM path is not built yet \(it needs a GPU of compute capability 8\.9 or newer\)/,
  );
});
