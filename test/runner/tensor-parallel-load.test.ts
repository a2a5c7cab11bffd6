import assert from 'node:assert/strict';
import { test } from 'node:test';
import { preparePoolingModel } from '../../src/runner/pooling-setup.ts';
import { checkTensorParallelLoad } from '../../src/runner/tensor-parallel.ts';
import { modelFixture } from '../helpers/fixtures.ts';

test('CUDA refuses more than one rank in one line: fewer devices than ranks, else NCCL not built yet', () => {
  assert.throws(
    () => checkTensorParallelLoad(2, { device: 'cuda' }),
    /^UserError: --tensor-parallel-size 2: (the CUDA driver sees [01] device\(s\), fewer than 2|tensor parallelism over NCCL is not built yet \(--device cpu simulates the ranks\))$/,
  );
  // One rank is the plain path: nothing to refuse, whatever the device.
  checkTensorParallelLoad(1, { device: 'cuda', quantization: 'q8_0', kvCompression: { method: 'snapkv' } });
});

test('quantized weights and KV compression refuse more than one rank in one line', () => {
  assert.throws(
    () => checkTensorParallelLoad(2, { device: 'cpu', quantization: 'q4_k_m' }),
    /^UserError: --tensor-parallel-size 2: quantized weights \(--quantization q4_k_m\) cannot be split over ranks yet$/,
  );
  assert.throws(
    () => checkTensorParallelLoad(4, { device: 'cpu', kvCompression: { method: 'snapkv' } }),
    /^UserError: --tensor-parallel-size 4: --kv-compression cannot run with tensor parallelism yet$/,
  );
});

const embed = modelFixture('tiny-qwen3-embed');
test('an embedding model refuses more than one rank in one line', { skip: embed.skip }, async () => {
  await assert.rejects(
    () => preparePoolingModel(embed.path, { device: 'cpu', tensorParallelSize: 2, log: () => {} }),
    /^UserError: --tensor-parallel-size 2: \S+ is an embedding or reranking model, which runs on one rank$/,
  );
});
