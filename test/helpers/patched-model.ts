import { join } from 'node:path';
import type { Backend } from '../../src/backend/backend.ts';
import { parseModelConfig, readJson } from '../../src/loader/hf-config.ts';
import { openSafetensors } from '../../src/loader/safetensors.ts';
import type { BuildOptions } from '../../src/models/architecture.ts';
import { loadModel } from '../../src/models/load.ts';
import type { Model } from '../../src/models/model.ts';
import { pickArchitecture } from '../../src/models/registry.ts';
import { ModelWeights } from '../../src/models/weights.ts';

/** `loadModel` with fields of config.json replaced (null removes a setting, as in a config that says null). */
export function loadPatchedModel(
  dir: string,
  backend: Backend,
  patch: Record<string, unknown>,
  options: BuildOptions = {},
): Model {
  const path = join(dir, 'config.json');
  const config = parseModelConfig({ ...readJson(path), ...patch }, path);
  const source = openSafetensors(dir);
  try {
    return pickArchitecture(config, path).build(config, new ModelWeights(source, backend, dir), backend, options);
  } finally {
    source.close();
  }
}

/**
 * Config fields a fixture's golden forward did not apply. transformers 5.17's default attention (sdpa) drops Gemma 2's
 * attention-logit soft-cap (only its eager attention applies it, as Google's reference and vLLM do), so tiny-gemma2's
 * golden was computed without it; pagoda applies it (test/models/gemma.test.ts checks it through the paged path,
 * test/backend/cpu/attention.test.ts against a float64 reference).
 */
const NOT_IN_GOLDEN: Record<string, Record<string, unknown>> = { 'tiny-gemma2': { attn_logit_softcapping: null } };

/** The fixture model `name` as its golden.json was computed. */
export function loadAsGolden(name: string, dir: string, backend: Backend, options: BuildOptions = {}): Model {
  const patch = NOT_IN_GOLDEN[name];
  return patch ? loadPatchedModel(dir, backend, patch, options) : loadModel(dir, backend, options);
}
