import type { PoolingModel, PoolingTask } from '../models/pooling-model.ts';
import { buildPoolingBatch, type PoolingInput } from './pooling-batch.ts';

/**
 * What the pooling engine needs to run a step: whole sequences in, one host row per sequence out. `start` queues the
 * step's work on the device and returns what collects its rows, so the caller can serve the event loop while the
 * device computes (the CPU backend computes in `start`).
 */
export interface StepPooler {
  readonly task: PoolingTask;
  /** Width of each row (the embedding size, or 1 for a relevance logit). */
  readonly outputSize: number;
  /** Rows come L2-normalized (the model ends in Normalize). */
  readonly normalized: boolean;
  readonly vocabSize: number;
  /** Starts the sequences as one step; the returned function gives `[inputs.length, outputSize]` row-major. */
  start(inputs: readonly PoolingInput[]): () => Float32Array;
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

  start(inputs: readonly PoolingInput[]): () => Float32Array {
    const backend = this.model.backend;
    const rows = this.model.forward(backend.beginStep(buildPoolingBatch(inputs)));
    return () => backend.toHost(rows);
  }
}
