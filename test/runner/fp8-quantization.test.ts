import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend } from '../../src/backend/backend.ts';
import { hasFp8 } from '../../src/backend/cuda/fp8.ts';
import { prepareModel } from '../../src/runner/load.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const tiny = modelFixture('tiny-llama');

test('--quantization fp8 on the CPU is one line: no FP8 arithmetic there, q8_0 instead', { skip: tiny.skip }, () => {
  assert.throws(
    () => prepareModel(tiny.path, { device: 'cpu', quantization: 'fp8', log: () => {} }),
    /^UserError: --quantization fp8: the CPU backend has no FP8 arithmetic; use --quantization q8_0 for 8-bit weights on the CPU$/,
  );
});

test('--quantization fp8 on a CUDA backend without FP8 weights is one line naming compute capability 8.9', {
  skip: tiny.skip,
}, () => {
  // Refused before the backend is touched, so a stand-in that only names its device is enough.
  for (const cuda of [{ name: 'cuda' }, { name: 'cuda', fp8Weights: false }] as Backend[]) {
    assert.throws(
      () => prepareModel(tiny.path, { backend: cuda, quantization: 'FP8', log: () => {} }),
      /^UserError: --quantization FP8: FP8 weights need a GPU of compute capability 8\.9 or newer \(Ada, Hopper\), this CUDA backend has none; run the checkpoint's own dtype$/,
    );
  }
});

test('GGUF types pass --quantization on CUDA (their blocks run there): loading goes on to the backend', {
  skip: tiny.skip,
}, () => {
  // A stand-in CUDA backend with no weights to give: the load gets past the scheme's check and fails at the first
  // weight, not with a refusal of the scheme.
  assert.throws(
    () => prepareModel(tiny.path, { backend: { name: 'cuda' } as Backend, quantization: 'q8_0', log: () => {} }),
    (err: Error) => !/--quantization/.test(String(err)) && /loadWeight|loadStacked/.test(String(err)),
  );
});

test('compute capability 8.9 (Ada) and newer have FP8 weights; 8.6 and 8.0 do not', () => {
  assert.deepEqual(
    [
      [8, 0],
      [8, 6],
      [8, 9],
      [9, 0],
      [10, 0],
    ].map(([ccMajor, ccMinor]) => hasFp8({ ccMajor: ccMajor!, ccMinor: ccMinor! })),
    [false, false, true, true, true],
  );
});
