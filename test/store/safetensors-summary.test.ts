import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModelConfig } from '../../src/loader/hf-config.ts';
import { summarizeSafetensors } from '../../src/store/safetensors-summary.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const fp8 = modelFixture('tiny-llama-fp8-block');
const reference = modelFixture('tiny-llama-fp8-block-dequantized');

test("show's parameters come from the headers, an FP8 checkpoint's scales left out; FP8 is named as such", {
  skip: fp8.skip || reference.skip,
}, () => {
  const quantized = summarizeSafetensors(fp8.path, loadModelConfig(fp8.path))!;
  const plain = summarizeSafetensors(reference.path, loadModelConfig(reference.path))!;
  // The same weights, one stored in FP8 with a scale per 128 x 128 tile, the other dequantized to f32.
  assert.equal(quantized.parameterCount, plain.parameterCount);
  // Llama's tensors, counted from config.json: q/k/v/o, gate/up/down and two norms a layer, the final norm, the
  // embeddings and (untied) the LM head.
  const c = loadModelConfig(fp8.path);
  const kv = c.numKvHeads * c.headDim;
  const layer =
    2 * c.hiddenSize * c.numHeads * c.headDim + 2 * c.hiddenSize * kv + 3 * c.hiddenSize * c.intermediateSize;
  const head = c.tieWordEmbeddings ? 1 : 2;
  const want = c.numLayers * (layer + 2 * c.hiddenSize) + c.hiddenSize + head * c.vocabSize * c.hiddenSize;
  assert.equal(plain.parameterCount, want);
  assert.equal(quantized.quantization, 'FP8');
  assert.equal(plain.quantization, loadModelConfig(reference.path).dtype);
  const bare = mkdtempSync(join(tmpdir(), 'pagoda-bare-'));
  try {
    copyFileSync(join(fp8.path, 'config.json'), join(bare, 'config.json'));
    assert.equal(summarizeSafetensors(bare, loadModelConfig(bare)), null);
  } finally {
    rmSync(bare, { recursive: true, force: true });
  }
});

test('a folder of a method pagoda refuses to load is still summarized, under its method name', {
  skip: reference.skip,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-awq-'));
  try {
    const config = JSON.parse(readFileSync(join(reference.path, 'config.json'), 'utf8'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ ...config, quantization_config: { quant_method: 'awq' } }),
    );
    copyFileSync(join(reference.path, 'model.safetensors'), join(dir, 'model.safetensors'));
    const summary = summarizeSafetensors(dir, loadModelConfig(dir))!;
    assert.equal(summary.quantization, 'AWQ');
    assert.equal(
      summary.parameterCount,
      summarizeSafetensors(reference.path, loadModelConfig(reference.path))!.parameterCount,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
