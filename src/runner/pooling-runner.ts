import type { PoolingModel, PoolingTask } from '../models/pooling-model.ts';
import { buildPoolingBatch, type PoolingInput } from './pooling-batch.ts';

/** What the pooling engine needs to run a step: whole sequences in, one host row per sequence out. */
export interface StepPooler {
  readonly task: PoolingTask;
  /** Width of each row (the embedding size, or 1 for a relevance logit). */
  readonly outputSize: number;
  /** Rows come L2-normalized (the model ends in Normalize). */
  readonly normalized: boolean;
  readonly vocabSize: number;
  /** Runs the sequences as one step; returns `[inputs.length, outputSize]` row-major. */
  execute(inputs: readonly PoolingInput[]): Float32Array;
}

/** Runs a `PoolingModel` through its backend: one batch of whole sequences per step, no KV cache. */
export class PoolingRunner implements StepPooler {
  readonly task: PoolingTask;
  readonly outputSize: number;
  readonly normalized: boolean;
  readonly vocabSize: number;

  constructor(readonly model: PoolingModel) {
    this.task = model.task;
    this.outputSize = model.outputSize;
    this.normalized = model.normalized;
    this.vocabSize = model.config.vocabSize;
  }

  execute(inputs: readonly PoolingInput[]): Float32Array {
    const backend = this.model.backend;
    return backend.toHost(this.model.forward(backend.beginStep(buildPoolingBatch(inputs))));
  }
}
