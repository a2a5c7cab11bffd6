import type { KvCacheSpec, LayerKvCache, SampledIds, SamplingRow } from '../backend/backend.ts';
import type { Model } from '../models/model.ts';
import type { KvQuant } from '../primitives/kv-cache-type.ts';
import { buildStepBatch, type ScheduledChunk } from './step-batch.ts';

/**
 * One step's logit rows (in the order of `buildStepBatch`'s logitsIndices), where the backend left them. Valid until
 * the next step.
 */
export interface StepLogits {
  /** The given rows on the host, `[rows.length, vocab]` row-major. */
  toHost(rows: readonly number[]): Float32Array;
  /** Present when the backend samples on its device: one token id per sampling row (from its `logitRow`). */
  sample?(rows: readonly SamplingRow[]): Int32Array;
  /**
   * Present when the backend can also leave the ids on its device (async scheduling): `sample` without waiting; the
   * next step may take the ids as its input tokens (`StepRunner.execute`'s `inputs`).
   */
  sampleAsync?(rows: readonly SamplingRow[]): SampledIds;
}

/** What the engine needs to run a step: the model behind it is invisible to the scheduler and sampler. */
export interface StepRunner {
  readonly vocabSize: number;
  /**
   * Performs the queued block copies (copy-on-write), then computes the chunks in one forward. `inputs` (from the
   * previous step's `sampleAsync`): chunk i is one placeholder token whose id is sampled id i, taken on the device.
   */
  execute(chunks: readonly ScheduledChunk[], copies: readonly [number, number][], inputs?: SampledIds): StepLogits;
}

/** Runs a `Model` over its paged KV cache through the backend: one mixed prefill + decode batch per step. */
export class ModelRunner implements StepRunner {
  readonly kvCache: LayerKvCache[];
  readonly vocabSize: number;

  constructor(
    readonly model: Model,
    readonly numBlocks: number,
    readonly blockSize: number,
    kvQuant?: KvQuant,
    kvScales?: KvCacheSpec['scales'],
  ) {
    this.kvCache = model.backend.allocKvCache({
      ...model.kvShape,
      numBlocks,
      blockSize,
      quant: kvQuant,
      scales: kvScales,
    });
    this.vocabSize = model.config.vocabSize;
  }

  execute(chunks: readonly ScheduledChunk[], copies: readonly [number, number][], inputs?: SampledIds): StepLogits {
    const backend = this.model.backend;
    if (inputs && !backend.forwardStep) throw new Error('execute: this backend cannot take device-sampled inputs');
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
    const logits = backend.forwardStep
      ? backend.forwardStep(batch, forward, inputs)
      : forward(backend.beginStep(batch));
    const sampleTokens = backend.sampleTokens?.bind(backend);
    const sampleAsync = backend.sampleTokensAsync?.bind(backend);
    return {
      toHost: (rows) => backend.toHost(logits, rows),
      sample: sampleTokens && ((rows) => sampleTokens(logits, rows)),
      sampleAsync: sampleAsync && ((rows) => sampleAsync(logits, rows)),
    };
  }
}

/** Bytes one KV block takes across all layers (K and V) at `bytesPerElement`. */
export function kvBlockBytes(model: Model, blockSize: number, bytesPerElement: number): number {
  const { numLayers, numKvHeads, headDim } = model.kvShape;
  return 2 * numLayers * blockSize * numKvHeads * headDim * bytesPerElement;
}
