import type { KvCacheSpec, LayerKvCache } from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { CudaTensor, DTYPE_BYTES } from './tensor.ts';

/** One layer's K and V, each `[numBlocks, blockSize, numKvHeads, headDim]`. */
export class CudaLayerKv implements LayerKvCache {
  constructor(
    readonly k: CudaTensor,
    readonly v: CudaTensor,
  ) {}
  get numBlocks(): number {
    return this.k.shape[0]!;
  }
}

export function kvOf(cache: LayerKvCache): CudaLayerKv {
  if (!(cache instanceof CudaLayerKv)) throw new Error('KV cache does not belong to the CUDA backend');
  return cache;
}

/** The paged KV caches of a context: one device allocation for every layer of a model. */
export class KvCaches {
  private allocs: DevPtr[] = [];
  /** Bytes held by the caches allocated so far. */
  bytes = 0;
  /** Bumped by each allocation: decode graphs replay over the most recently allocated cache. */
  generation = 0;

  constructor(private readonly ctx: CudaContext) {}

  alloc(spec: KvCacheSpec): LayerKvCache[] {
    const { drv, dtype } = this.ctx;
    // The loader keeps the float cache on CUDA whatever the type (runner/kv-cache-choice.ts); this guards other callers.
    if (spec.quant) throw new Error(`a ${spec.quant} KV cache is not built for the CUDA backend`);
    const shape = [spec.numBlocks, spec.blockSize, spec.numKvHeads, spec.headDim];
    const bytes = shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype];
    // One allocation for every layer.
    const base = drv.alloc(2 * spec.numLayers * bytes);
    this.allocs.push(base);
    this.generation++;
    this.bytes += 2 * spec.numLayers * bytes;
    // Poisoned rather than zeroed: a read of a slot nothing wrote shows up as NaN in the tests.
    drv.fill32(base, 0x7fc07fc0, (2 * spec.numLayers * bytes) / 4);
    return Array.from({ length: spec.numLayers }, (_, l) => {
      const k = base + BigInt(2 * l * bytes);
      return new CudaLayerKv(new CudaTensor(shape, dtype, k), new CudaTensor(shape, dtype, k + BigInt(bytes)));
    });
  }

  /** Frees every cache allocated so far, once the stream is idle. */
  release(): void {
    this.ctx.drv.sync();
    for (const p of this.allocs) this.ctx.drv.free(p);
    this.allocs = [];
    this.bytes = 0;
  }

  copyBlocks(cache: readonly LayerKvCache[], src: Int32Array, dst: Int32Array): void {
    const drv = this.ctx.drv;
    for (const layer of cache) {
      const { k, v } = kvOf(layer);
      const blockBytes = k.bytes / k.shape[0]!;
      for (let i = 0; i < src.length; i++) {
        const from = BigInt(src[i]! * blockBytes);
        const to = BigInt(dst[i]! * blockBytes);
        drv.copy(k.ptr + to, k.ptr + from, blockBytes);
        drv.copy(v.ptr + to, v.ptr + from, blockBytes);
      }
    }
  }

  /** Bytes of KV cache per block for a model (K and V, every layer). */
  blockBytes(spec: Omit<KvCacheSpec, 'numBlocks'>): number {
    return 2 * spec.numLayers * spec.blockSize * spec.numKvHeads * spec.headDim * DTYPE_BYTES[this.ctx.dtype];
  }
}
