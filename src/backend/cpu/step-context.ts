import type { StepBatch } from '../../primitives/step-batch.ts';
import type { LayerKvCache, RopeSpec, StepContext } from '../backend.ts';
import type { PagedKv } from './attention.ts';

/** The step's plan plus cos/sin tables computed once per rope spec and reused by every layer. */
export class CpuStepContext implements StepContext {
  readonly ropeCache = new Map<RopeSpec, { cos: Float32Array; sin: Float32Array }>();
  constructor(readonly batch: StepBatch) {}
}

export function stepOf(step: StepContext): CpuStepContext {
  if (!(step instanceof CpuStepContext)) throw new Error('step context does not belong to the CPU backend');
  return step;
}

/** One layer's cache: its K and V planes (kv-store.ts) and geometry. */
export class CpuLayerKv implements LayerKvCache {
  constructor(
    readonly numBlocks: number,
    readonly blockSize: number,
    readonly paged: PagedKv,
  ) {}
}

export function kvOf(cache: LayerKvCache): CpuLayerKv {
  if (!(cache instanceof CpuLayerKv)) throw new Error('KV cache does not belong to the CPU backend');
  return cache;
}

export function pagedOf(cache: LayerKvCache): PagedKv {
  return kvOf(cache).paged;
}
