import type { Backend } from '../backend/backend.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import type { Model } from './model.ts';
import type { ModelWeights } from './weights.ts';

/** One supported architecture: the config names it answers to and how to build it from checked weights. */
export interface Architecture {
  /** `architectures[0]` values in config.json. */
  names: readonly string[];
  /** `model_type` values, used when `architectures` is absent. */
  modelTypes: readonly string[];
  build(config: ModelConfig, weights: ModelWeights, backend: Backend): Model;
}
