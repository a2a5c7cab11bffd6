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
 * The config fields to change so the fixture model in `dir` computes as its golden.json was computed.
 * transformers' default attention (sdpa) drops Gemma 2's attention-logit soft-cap (only its eager attention applies
 * it, as Google's reference and vLLM do), so a Gemma 2 golden not marked `"attn_implementation": "eager"`
 * (test/fixtures/regenerate-golden.py marks what it writes) was computed without it. pagoda applies it otherwise
 * (test/models/gemma.test.ts checks it through the paged path, test/backend/cpu/attention.test.ts against a float64
 * reference).
 */
export function goldenPatch(dir: string): Record<string, unknown> {
  const golden = readJson(join(dir, 'golden.json'));
  const uncapped = golden.architecture === 'Gemma2ForCausalLM' && golden.attn_implementation !== 'eager';
  return uncapped ? { attn_logit_softcapping: null } : {};
}

/** The fixture model in `dir` as its golden.json was computed (`goldenPatch`). */
export function loadAsGolden(dir: string, backend: Backend, options: BuildOptions = {}): Model {
  const patch = goldenPatch(dir);
  return Object.keys(patch).length ? loadPatchedModel(dir, backend, patch, options) : loadModel(dir, backend, options);
}
