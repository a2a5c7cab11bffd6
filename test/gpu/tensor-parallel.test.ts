import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { prepareModel } from '../../src/runner/load.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip } from '../helpers/gpu.ts';

const fixture = modelFixture('tiny-llama');
const skip = gpuSkip() || fixture.skip;

test('--device cuda refuses more ranks than devices, and otherwise the NCCL path not built yet, in one line', {
  skip,
}, () => {
  const count = CudaDriver.open().info.deviceCount;
  for (const ranks of [2, count + 1]) {
    const expected =
      ranks > count
        ? `--tensor-parallel-size ${ranks}: the CUDA driver sees ${count} device(s), fewer than ${ranks}`
        : `--tensor-parallel-size ${ranks}: tensor parallelism over NCCL is not built yet (--device cpu simulates the ranks)`;
    assert.throws(
      () => prepareModel(fixture.path, { device: 'cuda', tensorParallelSize: ranks, log: () => {} }),
      (err: Error) => err.message === expected,
    );
  }
});
