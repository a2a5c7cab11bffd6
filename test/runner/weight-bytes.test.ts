import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { quantizeToGguf } from '../../src/loader/gguf/quantize.ts';
import { GgufFile } from '../../src/loader/gguf/read.ts';
import { type GgufTensorOut, writeGguf } from '../../src/loader/gguf/write.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { quantize } from '../../src/primitives/quant/index.ts';
import { parseQuantization } from '../../src/primitives/quant/mix.ts';
import { type DeviceWeightOptions, deviceWeights } from '../../src/runner/weight-bytes.ts';
import { modelFixture, projectRoot } from '../helpers/fixtures.ts';
import { FP8_VARIANTS, fixture } from '../helpers/fp8-fixtures.ts';

const scheme = parseQuantization('q4_k_m', 'test');
const bytesOf = (dir: string, o: DeviceWeightOptions) => deviceWeights(dir, o).bytes;
const blockTypesOf = (dir: string, quantization?: DeviceWeightOptions['quantization']) =>
  deviceWeights(dir, { dtype: 'bf16', quantization }).blockTypes.sort();

test('an FP8 checkpoint is sized as it will load: per-block scales dequantized, per-channel / per-tensor kept FP8', () => {
  for (const { variant } of FP8_VARIANTS) {
    const dir = fixture(`tiny-llama-fp8-${variant}`);
    for (const dtype of ['bf16', 'f32'] as const) {
      // The dummy path counts exactly what the model's weights take on the device (with FP8 decoder matrices).
      const exact = bytesOf(dir, { dtype, dummy: true, fp8: variant !== 'block' });
      const estimate = bytesOf(dir, { dtype });
      assert.ok(estimate >= exact && estimate < exact * 1.05, `${variant} ${dtype}: ${estimate} for ${exact} bytes`);
    }
  }
});

test('--quantization fp8 counts its decoder matrices at one byte a value plus a float scale per row', () => {
  const dir = fixture('tiny-llama-fp8-block-dequantized');
  const bf16 = bytesOf(dir, { dtype: 'bf16', dummy: true });
  const fp8 = bytesOf(dir, { dtype: 'bf16', fp8: true });
  assert.equal(
    fp8,
    bytesOf(dir, { dtype: 'bf16', dummy: true, fp8: true }),
    'a checkpoint counts as its config.json shapes',
  );
  assert.ok(fp8 < bf16 && fp8 > bf16 / 2, `${fp8} bytes against ${bf16} in bf16`);
});

test('a dummy model quantized at load is sized as its blocks, counted without making them on the host', () => {
  const dir = join(projectRoot, 'bench', 'configs', 'llama3-8b');
  const bf16 = bytesOf(dir, { dtype: 'bf16', dummy: true });
  const t0 = performance.now();
  const q4km = bytesOf(dir, { dtype: 'bf16', dummy: true, quantization: scheme });
  const q8 = bytesOf(dir, { dtype: 'bf16', dummy: true, quantization: parseQuantization('q8_0', 'test') });
  // Counting builds no blocks: the host would take tens of seconds to make an 8B model's.
  assert.ok(performance.now() - t0 < 5000, `counting took ${performance.now() - t0} ms`);
  // Llama-3-8B: 8.03e9 weights, 16.06 GB in bf16; llama.cpp's Q4_K_M file is 4.92 GB, its Q8_0 8.54 GB. Norms
  // (1-D) stay in bf16.
  assert.ok(Math.abs(bf16 - 16.06e9) < 0.01e9, `bf16 ${bf16}`);
  assert.ok(Math.abs(q4km - 4.92e9) < 0.05e9, `q4_k_m ${q4km}`);
  assert.ok(Math.abs(q8 - 8.54e9) < 0.05e9, `q8_0 ${q8}`);
});

const tinyLlama = modelFixture('tiny-llama-256');
let q4kmPath: string | null = null;
/** tiny-llama-256 written as a Q4_K_M GGUF file, once. */
function q4kmFile(): string {
  if (!q4kmPath) {
    q4kmPath = join(mkdtempSync(join(tmpdir(), 'pagoda-weight-bytes-')), 'q4_k_m.gguf');
    quantizeToGguf(tinyLlama.path, q4kmPath, scheme);
  }
  return q4kmPath;
}
test('a GGUF file is sized from its tensor table: quantized matrices as stored, as a dummy load of that mix counts', {
  skip: tinyLlama.skip,
}, () => {
  const path = q4kmFile();
  const fromFile = bytesOf(path, { dtype: 'bf16' });
  const counted = bytesOf(tinyLlama.path, { dtype: 'bf16', dummy: true, quantization: scheme });
  // The same matrices in the same types; alignment differs (per tensor in the file, per stacked part when counted).
  assert.ok(Math.abs(fromFile - counted) <= 0.02 * counted, `GGUF ${fromFile}, counted ${counted}`);
  assert.ok(fromFile < 0.5 * bytesOf(tinyLlama.path, { dtype: 'bf16', dummy: true }), 'well under the bf16 weights');
});

test('the block types the kernel plan builds ahead: a GGUF file its own, a mix quantized at load the same, else none', {
  skip: tinyLlama.skip,
}, () => {
  const path = q4kmFile();
  // Q4_K_M: Q4_K, with Q6_K for the LM head (tied embeddings here), the V projection and half the down projections.
  assert.deepEqual(blockTypesOf(path), ['q4_k', 'q6_k']);
  assert.deepEqual(blockTypesOf(tinyLlama.path, scheme), ['q4_k', 'q6_k']);
  assert.deepEqual(blockTypesOf(tinyLlama.path), []);
  // Dummy weights of a mix: its types, counted in the same pass as the bytes.
  const dummy = deviceWeights(tinyLlama.path, { dtype: 'bf16', dummy: true, quantization: scheme });
  assert.deepEqual(dummy.blockTypes.sort(), ['q4_k', 'q6_k']);
});

test('a 16-bit checkpoint quantized at load reserves its blocks, not its files', { skip: tinyLlama.skip }, () => {
  const atLoad = bytesOf(tinyLlama.path, { dtype: 'bf16', quantization: scheme });
  assert.equal(atLoad, bytesOf(tinyLlama.path, { dtype: 'bf16', dummy: true, quantization: scheme }));
  assert.ok(atLoad < 0.5 * bytesOf(tinyLlama.path, { dtype: 'bf16' }), 'well under the checkpoint in bf16');
});

const tinyBert = modelFixture('tiny-bert');
test('a quantized GGUF pooling model reserves its tensors dequantized (as it loads), with no block types', {
  skip: tinyBert.skip,
}, () => {
  const path = join(mkdtempSync(join(tmpdir(), 'pagoda-weight-bytes-')), 'bert-q8_0.gguf');
  quantizeToGguf(tinyBert.path, path, parseQuantization('q8_0', '--type'));
  const pooled = deviceWeights(path, { dtype: 'bf16', pooling: true });
  const counted = deviceWeights(tinyBert.path, { dtype: 'bf16', dummy: true, pooling: true });
  assert.deepEqual(pooled.blockTypes, []);
  // The same tensors in bf16 (Q8_0 blocks would take ~half): the file leaves out the pooler, aligns per tensor.
  assert.ok(Math.abs(pooled.bytes - counted.bytes) <= 0.03 * counted.bytes, `${pooled.bytes} vs ${counted.bytes}`);
  assert.deepEqual(deviceWeights(path, { dtype: 'bf16' }).blockTypes, ['q8_0']);
});

const tinyMixtral = modelFixture('tiny-mixtral');
test('a MoE GGUF is sized with its stacked experts as their blocks, as the CUDA backend keeps them', {
  skip: tinyMixtral.skip,
}, () => {
  const path = join(mkdtempSync(join(tmpdir(), 'pagoda-weight-bytes-')), 'mixtral-q8_0.gguf');
  quantizeToGguf(tinyMixtral.path, path, parseQuantization('q8_0', 'test'));
  const { bytes, blockTypes, expertScratchBytes } = deviceWeights(path, { dtype: 'bf16' });
  assert.deepEqual(blockTypes, ['q8_0']);
  // The largest stack as bf16 values (a layer's gate and up: 4 experts x 2 x 160 rows x 64), also when quantized at
  // load; none for a dense model.
  assert.equal(expertScratchBytes, 4 * 2 * 160 * 64 * 2);
  const atLoad = deviceWeights(tinyMixtral.path, { dtype: 'bf16', quantization: parseQuantization('q8_0', 'test') });
  assert.equal(atLoad.expertScratchBytes, 4 * 2 * 160 * 64 * 2);
  assert.equal(deviceWeights(q4kmFile(), { dtype: 'bf16' }).expertScratchBytes, 0);
  // Q8_0 takes 34 bytes per 32 values, bf16 64: with the experts (most of this model) as blocks, well under 0.6x.
  const bf16 = bytesOf(tinyMixtral.path, { dtype: 'bf16', dummy: true });
  assert.ok(bytes < 0.6 * bf16, `GGUF ${bytes}, bf16 ${bf16}`);
});

test("a layer whose gate and up experts are of two types: those two as values, down's stack the expert scratch", {
  skip: tinyMixtral.skip,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-weight-bytes-'));
  const q8 = join(dir, 'mixtral-q8_0.gguf');
  quantizeToGguf(tinyMixtral.path, q8, parseQuantization('q8_0', 'test'));
  // The up stacks requantized to Q4_0: each layer's gate (Q8_0) and up (Q4_0) pack into one stack of two types.
  const file = GgufFile.open(q8);
  const mixed = join(dir, 'mixtral-mixed.gguf');
  const tensors: GgufTensorOut[] = [...file.tensors.values()].map((info) => {
    const t = file.tensorAt(info);
    const up = info.name.endsWith('ffn_up_exps.weight');
    return {
      name: info.name,
      shape: [...t.shape],
      dtype: up ? 'q4_0' : t.dtype,
      bytes: () => (up ? quantize('q4_0', toFloat32(t)) : file.readBytes(info)),
    };
  });
  writeGguf(mixed, new Map(file.metadata), tensors);
  file.close();
  const { expertScratchBytes } = deviceWeights(mixed, { dtype: 'bf16' });
  // 4 experts x 64 rows x 160 (down alone), not the 4 x 2 x 160 x 64 of a gate/up stack kept in blocks.
  assert.equal(expertScratchBytes, 4 * 64 * 160 * 2);
});
