import type { Backend, KvCacheSpec, LayerKvCache, StepContext, Tensor } from '../backend/backend.ts';
import type { ModelConfig } from '../loader/hf-config.ts';

/** A causal LM written once in backend ops; runs one planned step over the paged KV cache. */
export interface Model {
  readonly config: ModelConfig;
  readonly backend: Backend;
  /** What the KV cache must hold per layer (block count and size are the engine's choice). */
  readonly kvShape: Omit<KvCacheSpec, 'numBlocks' | 'blockSize'>;
  /** Runs one step; returns logits `[step.batch.logitsIndices.length, vocab]`. */
  forward(step: StepContext, kvCache: readonly LayerKvCache[]): Tensor;
}
