import { join } from 'node:path';
import type { Backend } from '../backend/backend.ts';
import { loadModelConfig } from '../loader/hf-config.ts';
import { openSafetensors } from '../loader/safetensors.ts';
import type { QuantScheme } from '../primitives/quant/mix.ts';
import type { BuildOptions } from './architecture.ts';
import type { Model } from './model.ts';
import { quantizeAtLoad } from './quantize-at-load.ts';
import { pickArchitecture } from './registry.ts';
import { ModelWeights } from './weights.ts';

/**
 * Reads config.json and the safetensors in `dir`, checks every tensor's shape, and builds the model on `backend`;
 * with `quantization`, the Llama family's matrices are quantized as they load (quantize-at-load.ts).
 */
export function loadModel(
  dir: string,
  backend: Backend,
  options: BuildOptions & { quantization?: QuantScheme } = {},
): Model {
  const config = loadModelConfig(dir);
  const arch = pickArchitecture(config, join(dir, 'config.json'));
  const source = openSafetensors(dir);
  try {
    const convert = options.quantization && quantizeAtLoad(options.quantization, config, source.has('lm_head.weight'));
    return arch.build(config, new ModelWeights(source, backend, dir, convert), backend, options);
  } finally {
    source.close();
  }
}
