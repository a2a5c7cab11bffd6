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
  /** True when `forward` carries out a step's `kvCompression` plans (every cached attention through `cachedAttention`). */
  readonly compactsKv?: boolean;
}

/**
 * A transformer run over whole sequences with no KV cache (embedding and reranking models): bidirectional for
 * encoders (BERT), causal for decoders (Qwen3-Embedding).
 */
export interface Encoder {
  readonly config: ModelConfig;
  readonly backend: Backend;
  /** The longest sequence its positions allow. */
  readonly maxPositions: number;
  /** Final hidden states `[T, hidden]` of the step's tokens; each sequence attends only to its own tokens. */
  hiddenStates(step: StepContext): Tensor;
}
