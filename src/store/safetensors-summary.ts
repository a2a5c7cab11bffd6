import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../loader/hf-config.ts';
import { FP8_SCALE_TENSOR, parseQuantizationConfig } from '../loader/quantization-config.ts';
import { openSafetensors } from '../loader/safetensors.ts';

/**
 * What `show` and `/api/show` say of a Hugging Face folder's weights: the parameters its safetensors headers count
 * (FP8 scales left out; nothing is read but the headers) and its quantization: `FP8` for an FP8 checkpoint, another
 * method by its name (AWQ, GPTQ: listed, though pagoda refuses to load them), else config.json's dtype. Null for a
 * folder without weights (a bare config) or whose headers pagoda cannot read: the caller estimates from file sizes.
 */
export function summarizeSafetensors(
  dir: string,
  config: ModelConfig,
): { parameterCount: number; quantization: string } | null {
  const hasWeights =
    existsSync(join(dir, 'model.safetensors')) || existsSync(join(dir, 'model.safetensors.index.json'));
  if (!statSync(dir).isDirectory() || !hasWeights) return null;
  let parameterCount = 0;
  try {
    const source = openSafetensors(dir);
    try {
      for (const name of source.names()) {
        if (!FP8_SCALE_TENSOR.test(name)) parameterCount += source.describe(name).shape.reduce((a, d) => a * d, 1);
      }
    } finally {
      source.close();
    }
  } catch {
    return null;
  }
  return { parameterCount, quantization: quantizationName(config) };
}

function quantizationName(config: ModelConfig): string {
  const method = (config.raw.quantization_config as { quant_method?: unknown } | undefined)?.quant_method;
  if (method === undefined) return config.dtype;
  try {
    return parseQuantizationConfig(config.raw, 'config.json') ? 'FP8' : config.dtype;
  } catch {
    return String(method).toUpperCase();
  }
}
