import type { LayerKvCache } from '../backend/backend.ts';
import type { Model } from '../models/model.ts';
import { buildStepBatch, type ScheduledChunk } from './step-batch.ts';

/** What the engine needs to run a step: the model behind it is invisible to the scheduler and sampler. */
export interface StepRunner {
  readonly vocabSize: number;
  /**
   * Performs the queued block copies (copy-on-write), then computes the chunks in one forward and returns the
   * logit rows on the host, `[rows, vocab]` row-major, in the order of `buildStepBatch`'s logitsIndices.
   */
  execute(chunks: readonly ScheduledChunk[], copies: readonly [number, number][]): Float32Array;
}

/** Runs a `Model` over its paged KV cache through the backend: one mixed prefill + decode batch per step. */
export class ModelRunner implements StepRunner {
  readonly kvCache: LayerKvCache[];
  readonly vocabSize: number;

  constructor(
    readonly model: Model,
    readonly numBlocks: number,
    readonly blockSize: number,
  ) {
    this.kvCache = model.backend.allocKvCache({ ...model.kvShape, numBlocks, blockSize });
    this.vocabSize = model.config.vocabSize;
  }

  execute(chunks: readonly ScheduledChunk[], copies: readonly [number, number][]): Float32Array {
    const backend = this.model.backend;
    if (copies.length > 0) {
      backend.copyKvBlocks(
        this.kvCache,
        Int32Array.from(copies, ([s]) => s),
        Int32Array.from(copies, ([, d]) => d),
      );
    }
    const batch = buildStepBatch(chunks, this.blockSize);
    // A backend with forwardStep (CUDA) replays decode steps from captured graphs.
    const forward = (step: ReturnType<typeof backend.beginStep>) => this.model.forward(step, this.kvCache);
    return backend.toHost(
      backend.forwardStep ? backend.forwardStep(batch, forward) : forward(backend.beginStep(batch)),
    );
  }
}

/** Bytes one KV block takes across all layers (K and V) at `bytesPerElement`. */
export function kvBlockBytes(model: Model, blockSize: number, bytesPerElement: number): number {
  const { numLayers, numKvHeads, headDim } = model.kvShape;
  return 2 * numLayers * blockSize * numKvHeads * headDim * bytesPerElement;
}
