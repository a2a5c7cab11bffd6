import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pagedOf } from '../../src/backend/cpu/step-context.ts';
import { kvCacheDtype, kvCacheQuant } from '../../src/runner/kv-cache-choice.ts';
import { prepareModel } from '../../src/runner/load.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const llama = modelFixture('tiny-llama');
const mistral = modelFixture('tiny-mistral');

const fail = (line: string) => assert.fail(`unexpected warning: ${line}`);

test('a KV cache type means storage on the CPU, a compute dtype on the GPU, or one line saying why not', () => {
  const shape = { numKvHeads: 2, headDim: 64 };
  assert.equal(kvCacheQuant('q8_0', 'cpu', shape, fail), 'q8_0');
  assert.equal(kvCacheQuant('fp8', 'cpu', { numKvHeads: 1, headDim: 8 }, fail), 'fp8');
  assert.equal(kvCacheQuant('auto', 'cpu', shape, fail), undefined);
  assert.equal(kvCacheQuant('f32', 'cpu', shape, fail), undefined);
  assert.equal(kvCacheQuant('bf16', 'cuda', shape, fail), undefined);
  assert.equal(kvCacheDtype('bf16', undefined), 'bfloat16');
  assert.equal(kvCacheDtype('f16', 'float32'), 'float32');
  assert.equal(kvCacheDtype('q8_0', undefined), undefined);
  assert.throws(
    () => kvCacheQuant('f16', 'cpu', shape, fail),
    /^UserError: KV cache type f16: the CPU backend stores its KV cache in f32 or quantized \(fp8, q8_0, q4_0\)$/,
  );
  const warnings: string[] = [];
  assert.equal(
    kvCacheQuant('q4_0', 'cuda', shape, (l) => warnings.push(l)),
    undefined,
  );
  assert.deepEqual(warnings, [
    'KV cache type q4_0: the CUDA backend stores fp8 and q8_0 KV caches, not q4_0; using its float cache',
  ]);
  assert.equal(kvCacheQuant('fp8', 'cuda', shape, fail), 'fp8');
  assert.equal(kvCacheQuant('q8_0', 'cuda', shape, fail), 'q8_0');
  assert.throws(
    () => kvCacheQuant('q8_0', 'cuda', { numKvHeads: 1, headDim: 16 }, fail),
    /^UserError: KV cache type q8_0: a q8_0 KV cache stores each token's 1 × 16 = 16 key values in blocks of 32/,
  );
  assert.throws(
    () => kvCacheQuant('q8_0', 'cpu', { numKvHeads: 1, headDim: 16 }, fail),
    /^UserError: KV cache type q8_0: a q8_0 KV cache stores each token's 1 × 16 = 16 key values in blocks of 32, which 16 is not a multiple of \(use fp8\)$/,
  );
});

test('prepareModel stores the cache as asked, sizes it by the stored bytes, and refuses what the model cannot hold', {
  skip: llama.skip || mistral.skip,
}, () => {
  const lines: string[] = [];
  const base = { device: 'cpu', kvCacheMemory: 1 << 20, log: (l: string) => lines.push(l) };
  const f32 = prepareModel(llama.path, base);
  const q8 = prepareModel(llama.path, { ...base, kvCacheType: 'q8_0' });
  // The same memory holds 4 / (34 / 32) = 3.76 times the blocks.
  const { numLayers, numKvHeads, headDim } = f32.runner.model.kvShape;
  const values = 2 * numLayers * 16 * numKvHeads * headDim;
  assert.equal(f32.numBlocks, Math.floor((1 << 20) / (values * 4)));
  assert.equal(q8.numBlocks, Math.floor((1 << 20) / ((values * 34) / 32)));
  // What /api/ps reports: the blocks at the stored bytes (over two tensor-parallel ranks, each rank's cache).
  assert.equal(f32.kvCacheBytes, f32.numBlocks * values * 4);
  assert.equal(q8.kvCacheBytes, (q8.numBlocks * values * 34) / 32);
  const two = prepareModel(llama.path, { ...base, tensorParallelSize: 2 });
  assert.equal(two.kvCacheBytes, 2 * two.numBlocks * (values / 2) * 4);
  assert.equal(pagedOf(q8.runner.kvCache[0]!).k.type, 'q8_0');
  assert.ok(
    lines.some((l) => /^KV cache: .* \(q8_0: 3\.76x an f32 cache's tokens\)$/.test(l)),
    lines.join('\n'),
  );
  assert.throws(
    () => prepareModel(llama.path, { ...base, kvCacheType: 'q8_0', kvCompression: { method: 'snapkv', budget: 64 } }),
    /^UserError: --kv-compression: a q8_0 KV cache's blocks of 32 values span heads of 16, so one head's keys cannot move alone$/,
  );
  assert.throws(
    () => prepareModel(mistral.path, { ...base, kvCacheType: 'q4_0' }),
    /KV cache type q4_0: .* \(use fp8\)$/,
  );
  assert.equal(pagedOf(prepareModel(mistral.path, { ...base, kvCacheType: 'fp8' }).runner.kvCache[0]!).k.type, 'fp8');
});

const fp8Checkpoint = modelFixture('tiny-llama-fp8-tensor');
test("an fp8 cache takes an FP8 checkpoint's per-layer K and V scales", {
  skip: fp8Checkpoint.skip || llama.skip,
}, () => {
  const lines: string[] = [];
  const p = prepareModel(fp8Checkpoint.path, { device: 'cpu', kvCacheType: 'fp8', log: (l) => lines.push(l) });
  // The fixture's layers scale keys and values by 0.02 and 0.03 (compressed-tensors `self_attn.k_scale`/`v_scale`).
  const scales = p.runner.kvCache.map((layer) => [pagedOf(layer).k.scale, pagedOf(layer).v.scale]);
  assert.deepEqual(scales, [
    [Math.fround(0.02), Math.fround(0.02)],
    [Math.fround(0.03), Math.fround(0.03)],
  ]);
  assert.ok(lines.includes("KV cache: fp8 with the checkpoint's per-layer K and V scales"), lines.join('\n'));
  // A checkpoint without them: 1, and no line.
  const plain = prepareModel(llama.path, { device: 'cpu', kvCacheType: 'fp8', log: () => {} });
  assert.ok(plain.runner.kvCache.every((layer) => pagedOf(layer).k.scale === 1 && pagedOf(layer).v.scale === 1));
});

test("a block-quantized cache is checked against each tensor-parallel rank's row, not the whole model's", {
  skip: llama.skip,
}, () => {
  // tiny-llama: 2 KV heads of 16 values, a 32-value row; over 2 ranks each rank's row is 16 values, half a block.
  const base = { device: 'cpu', kvCacheMemory: 1 << 20, log: () => {} };
  assert.equal(pagedOf(prepareModel(llama.path, { ...base, kvCacheType: 'q8_0' }).runner.kvCache[0]!).k.type, 'q8_0');
  assert.throws(
    () => prepareModel(llama.path, { ...base, kvCacheType: 'q8_0', tensorParallelSize: 2 }),
    /^UserError: KV cache type q8_0: a q8_0 KV cache stores each token's 1 × 16 = 16 key values in blocks of 32/,
  );
});
