import type { PoolingModel, PoolingTask } from '../models/pooling-model.ts';
import type { StepBatch } from '../primitives/step-batch.ts';
import { buildPoolingBatch, type PoolingInput } from './pooling-batch.ts';

/**
 * What the pooling engine needs to run a step: whole sequences in, one host row per sequence out. `run` returns once
 * the step is launched; its promise resolves with the rows once the device is done (the CPU backend computes before
 * `run` returns, so its promise resolves at once).
 */
export interface StepPooler {
  readonly task: PoolingTask;
  /** Width of each row (the embedding size, or 1 for a relevance logit). */
  readonly outputSize: number;
  /** Rows come L2-normalized (the model ends in Normalize). */
  readonly normalized: boolean;
  readonly vocabSize: number;
  /**
   * The device computes apart from this thread (CUDA): `run` may be called again before the last step's rows arrive,
   * and the device runs the steps in launch order. The engine keeps at most two steps in flight.
   */
  readonly computesApart: boolean;
  /**
   * How long the latest step's launch took on another thread, counted from its post (a runner thread: `run` only plans
   * and posts the step, so the time it holds the engine's thread misses the launch). The engine's pacer adds it to that
   * time and starts the next step so much before the device would idle. Absent: the launch is all in `run`.
   */
  readonly launchMs?: number;
  /**
   * Launches the sequences as one step: `[inputs.length, outputSize]` row-major once done, in a buffer of the step's
   * own (the engine hands out views of it).
   */
  run(inputs: readonly PoolingInput[]): Promise<Float32Array>;
}

/** Runs a `PoolingModel` through its backend: one batch of whole sequences per step, no KV cache. */
export class PoolingRunner implements StepPooler {
  readonly task: PoolingTask;
  readonly outputSize: number;
  readonly normalized: boolean;
  readonly vocabSize: number;
  readonly computesApart: boolean;

  constructor(readonly model: PoolingModel) {
    this.task = model.task;
    this.outputSize = model.outputSize;
    this.normalized = model.normalized;
    this.vocabSize = model.config.vocabSize;
    this.computesApart = model.backend.name === 'cuda';
  }

  async run(inputs: readonly PoolingInput[]): Promise<Float32Array> {
    return this.runBatch(buildPoolingBatch(inputs));
  }

  /** A step already planned (the runner thread receives it so). */
  async runBatch(batch: StepBatch): Promise<Float32Array> {
    const backend = this.model.backend;
    const rows = this.model.forward(backend.beginStep(batch));
    // Queued behind the forward, before any later step reuses the activation arena the rows sit in.
    return backend.toHostAsync(rows);
  }
}
