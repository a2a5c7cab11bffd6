import type { Backend } from '../backend/backend.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import type { Model } from './model.ts';
import type { MoeFamily } from './moe.ts';
import type { ModelWeights } from './weights.ts';

/** Engine settings a model's build depends on. */
export interface BuildOptions {
  /**
   * The engine's longest sequence, prompt and output (`--max-model-len`): LongRoPE picks its short or long factors by
   * it. Default: the config's max_position_embeddings.
   */
  maxModelLen?: number;
}

/** One supported architecture: the config names it answers to and how to build it from checked weights. */
export interface Architecture {
  /** `architectures[0]` values in config.json. */
  names: readonly string[];
  /** `model_type` values, used when `architectures` is absent. */
  modelTypes: readonly string[];
  /** Its MLPs' mixture-of-experts family (moe.ts), for the kernel plan; absent: dense MLPs. */
  moe?: MoeFamily;
  /** Its forward runs over tensor-parallel ranks (`Backend.tensorParallelSize` > 1). */
  tensorParallel?: boolean;
  build(config: ModelConfig, weights: ModelWeights, backend: Backend, options: BuildOptions): Model;
}
