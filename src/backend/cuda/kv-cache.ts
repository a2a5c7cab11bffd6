import type { KvCacheSpec, LayerKvCache } from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { type CudaKvQuant, isCudaKvQuant, kvBlockBytesOf, kvPlaneOffsets, slotBytes } from './kv-layout.ts';
import { CudaTensor, DTYPE_BYTES } from './tensor.ts';

/** A quantized layer's extra state (kv-layout.ts): its q8_0 scale planes (0n for fp8) and its fp8 K and V scales. */
export interface QuantKv {
  readonly type: CudaKvQuant;
  readonly kScales: DevPtr;
  readonly vScales: DevPtr;
  readonly kScale: number;
  readonly vScale: number;
}

/**
 * One layer's K and V, each `[numBlocks, blockSize, numKvHeads, headDim]`: in the compute dtype, or quantized (one
 * byte per value, `quant` says how to read them).
 */
export class CudaLayerKv implements LayerKvCache {
  constructor(
    readonly shape: readonly [number, number, number, number],
    private readonly kvPtrs: { k: DevPtr; v: DevPtr },
    private readonly dtype: CudaTensor['dtype'],
    readonly quant: QuantKv | null = null,
  ) {}
  get numBlocks(): number {
    return this.shape[0];
  }
  get kPtr(): DevPtr {
    return this.kvPtrs.k;
  }
  get vPtr(): DevPtr {
    return this.kvPtrs.v;
  }
  /** K as a tensor of the compute dtype (a float cache only). */
  get k(): CudaTensor {
    return this.tensor(this.kvPtrs.k);
  }
  get v(): CudaTensor {
    return this.tensor(this.kvPtrs.v);
  }
  private tensor(ptr: DevPtr): CudaTensor {
    if (this.quant) throw new Error(`a ${this.quant.type} KV cache is not a ${this.dtype} tensor`);
    return new CudaTensor(this.shape, this.dtype, ptr);
  }
}

export function kvOf(cache: LayerKvCache): CudaLayerKv {
  if (!(cache instanceof CudaLayerKv)) throw new Error('KV cache does not belong to the CUDA backend');
  return cache;
}

/** The stored form of `spec`'s cache on CUDA: undefined for the float cache; q4_0 is not built. */
function quantOf(spec: Pick<KvCacheSpec, 'quant'>): CudaKvQuant | undefined {
  if (!spec.quant) return undefined;
  if (!isCudaKvQuant(spec.quant)) throw new Error(`a ${spec.quant} KV cache is not built for the CUDA backend`);
  return spec.quant;
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
    const quant = quantOf(spec);
    const shape = [spec.numBlocks, spec.blockSize, spec.numKvHeads, spec.headDim] as const;
    const planes = kvPlaneOffsets(spec, quant, DTYPE_BYTES[dtype]);
    // One allocation for every layer.
    const base = drv.alloc(planes.totalBytes);
    this.allocs.push(base);
    this.generation++;
    this.bytes += planes.totalBytes;
    // Poisoned rather than zeroed: a read of a slot nothing wrote shows up as NaN in the tests (bf16/f16 NaN pairs,
    // e4m3 NaN bytes; a q8_0 scale of half NaN).
    drv.fill32(base, quant === 'fp8' ? 0x7f7f7f7f : quant === 'q8_0' ? 0x7e007e00 : 0x7fc07fc0, planes.totalBytes / 4);
    return planes.layers.map((at, l) => {
      const ptrs = { k: base + BigInt(at.k), v: base + BigInt(at.v) };
      const scales = spec.scales?.[l] ?? { k: 1, v: 1 };
      const q8 = quant === 'q8_0';
      const extra: QuantKv | null = quant
        ? {
            type: quant,
            kScales: q8 ? base + BigInt(at.kScales) : 0n,
            vScales: q8 ? base + BigInt(at.vScales) : 0n,
            kScale: scales.k,
            vScale: scales.v,
          }
        : null;
      return new CudaLayerKv(shape, ptrs, dtype, extra);
    });
  }

  /** Frees every cache allocated so far, once the stream is idle. */
  release(): void {
    this.ctx.drv.sync();
    for (const p of this.allocs) this.ctx.drv.free(p);
    this.allocs = [];
    this.bytes = 0;
  }

  /** Copies whole blocks src[i] -> dst[i]: every plane, values and q8_0 scales alike. */
  copyBlocks(cache: readonly LayerKvCache[], src: Int32Array, dst: Int32Array): void {
    const drv = this.ctx.drv;
    for (const layer of cache) {
      const kv = kvOf(layer);
      const [, blockSize, Hk, D] = kv.shape;
      const per = slotBytes(kv.quant?.type, Hk * D, DTYPE_BYTES[this.ctx.dtype]);
      const planes: [DevPtr, number][] = [
        [kv.kPtr, per.values],
        [kv.vPtr, per.values],
      ];
      if (kv.quant && per.scales) planes.push([kv.quant.kScales, per.scales], [kv.quant.vScales, per.scales]);
      for (const [ptr, slot] of planes) {
        const blockBytes = blockSize * slot;
        for (let i = 0; i < src.length; i++) {
          drv.copy(ptr + BigInt(dst[i]! * blockBytes), ptr + BigInt(src[i]! * blockBytes), blockBytes);
        }
      }
    }
  }

  /** Bytes of KV cache per block for a model (K and V, every layer, q8_0 scales included). */
  blockBytes(spec: Omit<KvCacheSpec, 'numBlocks'>): number {
    return kvBlockBytesOf(spec, quantOf(spec), DTYPE_BYTES[this.ctx.dtype]);
  }
}
