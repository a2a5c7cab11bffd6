import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../loader/hf-config.ts';
import { parseQuantizationConfig } from '../loader/quantization-config.ts';
import { openSafetensors } from '../loader/safetensors.ts';

/** An FP8 checkpoint's scales: numbers about weights, not weights. */
const SCALE = /\.(weight_scale|weight_scale_inv|input_scale|output_scale|k_scale|v_scale)$/;

/**
 * What `show` and `/api/show` say of a Hugging Face folder's weights: the parameters its safetensors headers count
 * (scales left out; nothing is read but the headers) and its quantization: `FP8` for an FP8 checkpoint, else
 * config.json's dtype. Null for a folder without weights (a bare config).
 */
export function summarizeSafetensors(
  dir: string,
  config: ModelConfig,
): { parameterCount: number; quantization: string } | null {
  const hasWeights =
    existsSync(join(dir, 'model.safetensors')) || existsSync(join(dir, 'model.safetensors.index.json'));
  if (!statSync(dir).isDirectory() || !hasWeights) return null;
  const source = openSafetensors(dir);
  try {
    let parameterCount = 0;
    for (const name of source.names()) {
      if (!SCALE.test(name)) parameterCount += source.describe(name).shape.reduce((a, d) => a * d, 1);
    }
    const fp8 = parseQuantizationConfig(config.raw, join(dir, 'config.json'));
    return { parameterCount, quantization: fp8 ? 'FP8' : config.dtype };
  } finally {
    source.close();
  }
}
