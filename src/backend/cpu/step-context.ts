import type { StepBatch } from '../../primitives/step-batch.ts';
import type { KvCacheSpec, LayerKvCache, StepContext } from '../backend.ts';
import type { RopeSpec } from '../rope-spec.ts';
import type { PagedKv } from './attention.ts';
import { allocPlane, copySlots } from './kv-store.ts';

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

/** Every layer's cache for `spec`, stored as `spec.quant` says (f32 otherwise, fp8 with its scales); `shared` for worker threads. */
export function allocCpuKvCache(spec: KvCacheSpec, shared: boolean): CpuLayerKv[] {
  const slots = spec.numBlocks * spec.blockSize;
  const row = spec.numKvHeads * spec.headDim;
  const plane = (scale = 1) => allocPlane(spec.quant ?? 'f32', slots, row, shared, scale);
  return Array.from(
    { length: spec.numLayers },
    (_, l) =>
      new CpuLayerKv(spec.numBlocks, spec.blockSize, {
        k: plane(spec.scales?.[l]?.k),
        v: plane(spec.scales?.[l]?.v),
        numKvHeads: spec.numKvHeads,
        headDim: spec.headDim,
      }),
  );
}

/** Copies whole blocks src[i] → dst[i] of K and V in every layer (copy-on-write). */
export function copyCpuKvBlocks(cache: readonly LayerKvCache[], src: Int32Array, dst: Int32Array): void {
  for (const layer of cache) {
    const { blockSize, paged } = kvOf(layer);
    const row = paged.numKvHeads * paged.headDim;
    for (let i = 0; i < src.length; i++) {
      copySlots(paged.k, src[i]! * blockSize, dst[i]! * blockSize, blockSize, row);
      copySlots(paged.v, src[i]! * blockSize, dst[i]! * blockSize, blockSize, row);
    }
  }
}
