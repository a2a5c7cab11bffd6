import { DTYPE_NAMES } from '../primitives/host-tensor.ts';
import {
  isKvQuant,
  KV_QUANT_BYTES,
  type KvCacheType,
  type KvQuant,
  kvQuantMismatch,
} from '../primitives/kv-cache-type.ts';
import { UserError } from '../util/errors.ts';

/**
 * The compute dtype a KV cache type asks for on the GPU, unless --dtype was given: there a float KV cache is stored
 * in the compute dtype, so a float cache type picks --dtype.
 */
export function kvCacheDtype(type: KvCacheType | undefined, dtype: string | undefined): string | undefined {
  return dtype ?? (type && type !== 'auto' && !isKvQuant(type) ? DTYPE_NAMES[type] : undefined);
}

/**
 * The quantized storage `type` means for a model on `device` (undefined: the backend's float cache), or a one-line
 * refusal: the CPU computes in f32 and stores f32 or quantized caches; block-quantized rows must be whole blocks. The
 * CUDA backend stores fp8 and q8_0 (backend/cuda/kv-layout.ts); for q4_0 it keeps its float cache (the compute dtype)
 * and `warn` says so, as Ollama falls back to f16 where a quantized cache cannot run (a server started with
 * OLLAMA_KV_CACHE_TYPE keeps serving).
 */
export function kvCacheQuant(
  type: KvCacheType | undefined,
  device: 'cpu' | 'cuda',
  shape: { numKvHeads: number; headDim: number },
  warn: (line: string) => void,
): KvQuant | undefined {
  if (!type || type === 'auto') return undefined;
  if (!isKvQuant(type)) {
    if (device === 'cpu' && type !== 'f32') {
      throw new UserError(
        `KV cache type ${type}: the CPU backend stores its KV cache in f32 or quantized (fp8, q8_0, q4_0)`,
      );
    }
    return undefined;
  }
  if (device === 'cuda' && type === 'q4_0') {
    warn(`KV cache type ${type}: the CUDA backend stores fp8 and q8_0 KV caches, not q4_0; using its float cache`);
    return undefined;
  }
  const mismatch = kvQuantMismatch(type, shape.numKvHeads, shape.headDim);
  if (mismatch) throw new UserError(`KV cache type ${type}: ${mismatch} (use fp8)`);
  return type;
}

/**
 * Bytes one cached value takes: the quantized type's (on CUDA q8_0's scales sit in their own plane, the same bytes),
 * else the backend's float (4 on the CPU, 2 on the GPU).
 */
export function kvBytesPerValue(quant: KvQuant | undefined, device: 'cpu' | 'cuda'): number {
  return quant ? KV_QUANT_BYTES[quant] : device === 'cpu' ? 4 : 2;
}

const DEFAULT_CPU_KV_BYTES = 256 * 2 ** 20;

/**
 * KV blocks of `blockBytes` for a backend the runner made or was given (not a GPU it sized itself): `kvCacheMemory` bytes, else no more than every sequence at full length could
 * use, up to 256 MiB; logs the size (and a quantized cache's gain in tokens). None fitting is a user error.
 */
export function cpuKvBlocks(
  blockBytes: number,
  o: {
    blockSize: number;
    maxNumSeqs: number;
    maxModelLen: number;
    kvQuant: KvQuant | undefined;
    device: 'cpu' | 'cuda';
  },
  kvCacheMemory: number | undefined,
  log: (line: string) => void,
): number {
  const useful = o.maxNumSeqs * Math.ceil(o.maxModelLen / o.blockSize) * blockBytes;
  const bytes = kvCacheMemory ?? Math.min(DEFAULT_CPU_KV_BYTES, useful);
  const numBlocks = Math.floor(bytes / blockBytes);
  if (numBlocks < 1) {
    throw new UserError(
      `KV cache memory of ${bytes} bytes holds no block (one block of ${o.blockSize} tokens takes ${blockBytes} bytes)`,
    );
  }
  // A quantized cache holds more tokens in the same memory: say how many times an f32 cache's.
  const gain = o.kvQuant
    ? ` (${o.kvQuant}: ${(4 / kvBytesPerValue(o.kvQuant, o.device)).toFixed(2)}x an f32 cache's tokens)`
    : '';
  log(
    `KV cache: ${numBlocks} blocks of ${o.blockSize} tokens (${((numBlocks * blockBytes) / 2 ** 20).toFixed(1)} MiB), ` +
      `up to ${numBlocks * o.blockSize} concurrent tokens${gain}`,
  );
  return numBlocks;
}
