import type { Backend, PoolingMode, StepContext, Tensor } from '../backend/backend.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import type { ModelTask } from '../loader/model-task.ts';
import type { Encoder } from './model.ts';

/** What a pooling model computes per sequence: an embedding, or a relevance score (a cross-encoder reranker). */
export type PoolingTask = Exclude<ModelTask, 'generate'>;

/** A model whose step gives one row per sequence instead of logits: embeddings or rerank scores. */
export interface PoolingModel {
  readonly task: PoolingTask;
  readonly config: ModelConfig;
  readonly backend: Backend;
  readonly encoder: Encoder;
  /** Width of each output row: the embedding size, or 1 (a reranker's relevance logit). */
  readonly outputSize: number;
  /** Its rows are L2-normalized (a Normalize module). */
  readonly normalized: boolean;
  /** One row per sequence of the step, `[numSeqs, outputSize]`. */
  forward(step: StepContext): Tensor;
}

/** Encoder, pooling and (optionally) L2 normalization: a sentence-transformers embedding model. */
export class EmbeddingModel implements PoolingModel {
  readonly task = 'embed' as const;
  readonly config: ModelConfig;
  readonly backend: Backend;
  readonly outputSize: number;

  constructor(
    readonly encoder: Encoder,
    readonly pooling: PoolingMode,
    readonly normalized: boolean,
  ) {
    this.config = encoder.config;
    this.backend = encoder.backend;
    this.outputSize = encoder.config.hiddenSize;
  }

  forward(step: StepContext): Tensor {
    const b = this.backend;
    const pooled = b.pool(this.encoder.hiddenStates(step), step, this.pooling);
    return this.normalized ? b.l2Normalize(pooled) : pooled;
  }
}

export interface Linear {
  weight: Tensor;
  bias?: Tensor;
}

/**
 * A reranker: one token's state to a relevance logit. A cross-encoder (BertForSequenceClassification /
 * XLMRobertaForSequenceClassification with one label) takes the first token through dense + tanh, then its one-logit
 * classifier. A decoder reranker as llama.cpp runs a Qwen3-Reranker GGUF takes the last token's final-normed state
 * through `cls.output`, whose "yes" and "no" rows pooling-load.ts folds into one (yes - no): llama.cpp's score, the
 * first of the pair's softmax, is sigmoid(yes - no). The pooling engine turns the logit into a sigmoid either way.
 */
export class RerankerModel implements PoolingModel {
  readonly task = 'score' as const;
  readonly outputSize = 1;
  readonly normalized = false;
  readonly config: ModelConfig;
  readonly backend: Backend;

  constructor(
    readonly encoder: Encoder,
    private readonly token: 'cls' | 'last',
    /** The cross-encoder's dense layer before tanh; none for a decoder reranker. */
    private readonly dense: Linear | undefined,
    private readonly out: Linear,
  ) {
    this.config = encoder.config;
    this.backend = encoder.backend;
  }

  forward(step: StepContext): Tensor {
    const b = this.backend;
    const pooled = b.pool(this.encoder.hiddenStates(step), step, this.token);
    const h = this.dense ? b.tanh(b.linear(pooled, this.dense.weight, this.dense.bias)) : pooled;
    return b.linear(h, this.out.weight, this.out.bias);
  }
}
