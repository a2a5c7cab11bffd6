import { join } from 'node:path';
import type { Backend } from '../backend/backend.ts';
import { loadModelConfig } from '../loader/hf-config.ts';
import { openSafetensors } from '../loader/safetensors.ts';
import type { BuildOptions } from './architecture.ts';
import type { Model } from './model.ts';
import { pickArchitecture } from './registry.ts';
import { ModelWeights } from './weights.ts';

/** Reads config.json and the safetensors in `dir`, checks every tensor's shape, and builds the model on `backend`. */
export function loadModel(dir: string, backend: Backend, options: BuildOptions = {}): Model {
  const config = loadModelConfig(dir);
  const arch = pickArchitecture(config, join(dir, 'config.json'));
  const source = openSafetensors(dir);
  try {
    return arch.build(config, new ModelWeights(source, backend, dir), backend, options);
  } finally {
    source.close();
  }
}
