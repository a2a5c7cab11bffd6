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

/**
 * Where a family's layers differ from the Llama stack's in what the CUDA kernel plan builds ahead
 * (runner/kernel-plan-model.ts); absent: the Llama stack's RMSNorm, RoPE, gated MLP and q/k/v GEMV with RoPE.
 */
export interface KernelShape {
  /** LayerNorm where the Llama stack has RMSNorm. */
  layerNorm?: true;
  /** Learned positions, no RoPE (GPT-2, GPTBigCode). */
  learnedPositions?: true;
  /** A plain MLP (up, activation, down) where the Llama stack's is gated. */
  plainMlp?: true;
  /** q and k normed before RoPE (per head or across heads): RoPE takes its own launch, not the q/k/v GEMV's. */
  qkNorm?: true;
}

/** One supported architecture: the config names it answers to and how to build it from checked weights. */
export interface Architecture {
  /** `architectures[0]` values in config.json. */
  names: readonly string[];
  /** `model_type` values, used when `architectures` is absent. */
  modelTypes: readonly string[];
  /** Its MLPs' mixture-of-experts family (moe.ts), for the kernel plan; absent: dense MLPs. */
  moe?: MoeFamily;
  /** Its layers' shape for the kernel plan, where not the Llama stack's. */
  kernelShape?: KernelShape;
  /** Its forward runs over tensor-parallel ranks (`Backend.tensorParallelSize` > 1). */
  tensorParallel?: boolean;
  build(config: ModelConfig, weights: ModelWeights, backend: Backend, options: BuildOptions): Model;
}
