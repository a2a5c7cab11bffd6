import assert from 'node:assert/strict';
import { test } from 'node:test';
import { weightBytes } from '../../src/runner/weight-bytes.ts';
import { FP8_VARIANTS, fixture } from '../helpers/fp8-fixtures.ts';

test('an FP8 checkpoint is sized as it will load: per-block scales dequantized, per-channel / per-tensor kept FP8', () => {
  for (const { variant } of FP8_VARIANTS) {
    const dir = fixture(`tiny-llama-fp8-${variant}`);
    for (const dtype of ['bf16', 'f32'] as const) {
      // The dummy path counts exactly what the model's weights take on the device (with FP8 decoder matrices).
      const exact = weightBytes(dir, dtype, true, false, variant !== 'block');
      const estimate = weightBytes(dir, dtype, false);
      assert.ok(estimate >= exact && estimate < exact * 1.05, `${variant} ${dtype}: ${estimate} for ${exact} bytes`);
    }
  }
});

test('--quantization fp8 counts its decoder matrices at one byte a value plus a float scale per row', () => {
  const dir = fixture('tiny-llama-fp8-block-dequantized');
  const bf16 = weightBytes(dir, 'bf16', true);
  const fp8 = weightBytes(dir, 'bf16', false, false, true);
  assert.equal(fp8, weightBytes(dir, 'bf16', true, false, true), 'a checkpoint counts as its config.json shapes');
  assert.ok(fp8 < bf16 && fp8 > bf16 / 2, `${fp8} bytes against ${bf16} in bf16`);
});
