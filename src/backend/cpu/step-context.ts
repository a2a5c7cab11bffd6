import type { StepBatch } from '../../primitives/step-batch.ts';
import type { LayerKvCache, RopeSpec, StepContext } from '../backend.ts';
import type { PagedKv } from './attention.ts';
import type { CpuTensor } from './tensor.ts';

/** The step's plan plus cos/sin tables computed once per rope spec and reused by every layer. */
export class CpuStepContext implements StepContext {
  readonly ropeCache = new Map<RopeSpec, { cos: Float32Array; sin: Float32Array }>();
  constructor(readonly batch: StepBatch) {}
}

export function stepOf(step: StepContext): CpuStepContext {
  if (!(step instanceof CpuStepContext)) throw new Error('step context does not belong to the CPU backend');
  return step;
}

/** One layer's cache; K and V are CpuTensors so models hold them like any other tensor. */
export class CpuLayerKv implements LayerKvCache {
  constructor(
    readonly k: CpuTensor,
    readonly v: CpuTensor,
  ) {}
  paged(): PagedKv {
    const [, , numKvHeads, headDim] = this.k.shape as number[];
    return { k: this.k.data, v: this.v.data, numKvHeads: numKvHeads!, headDim: headDim! };
  }
}

export function pagedOf(cache: LayerKvCache): PagedKv {
  if (!(cache instanceof CpuLayerKv)) throw new Error('KV cache does not belong to the CPU backend');
  return cache.paged();
}
