import assert from 'node:assert/strict';
import { test } from 'node:test';
import { weightBytes } from '../../src/runner/weight-bytes.ts';
import { FP8_VARIANTS, fixture } from '../helpers/fp8-fixtures.ts';

test('an FP8 checkpoint is sized for its dequantized weights, not its one-byte file', () => {
  for (const { variant } of FP8_VARIANTS) {
    const dir = fixture(`tiny-llama-fp8-${variant}`);
    for (const dtype of ['bf16', 'f32'] as const) {
      // The dummy path counts exactly what the model's weights take on the device.
      const exact = weightBytes(dir, dtype, true);
      const estimate = weightBytes(dir, dtype, false);
      assert.ok(estimate >= exact && estimate < exact * 1.05, `${variant} ${dtype}: ${estimate} for ${exact} bytes`);
    }
  }
});
