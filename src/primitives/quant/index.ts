import type { QuantType } from '../ggml-types.ts';
import type { QuantCodec } from './codec.ts';
import { Q4_K, Q5_K, Q6_K } from './kquants-high.ts';
import { Q2_K, Q3_K } from './kquants-low.ts';
import { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 } from './legacy.ts';

export type { QuantCodec } from './codec.ts';

const CODECS: Record<QuantType, QuantCodec> = {
  q8_0: Q8_0,
  q4_0: Q4_0,
  q4_1: Q4_1,
  q5_0: Q5_0,
  q5_1: Q5_1,
  q2_k: Q2_K,
  q3_k: Q3_K,
  q4_k: Q4_K,
  q5_k: Q5_K,
  q6_k: Q6_K,
};

export function codecOf(type: QuantType): QuantCodec {
  return CODECS[type];
}

/** Bytes of `count` values as `type` blocks; `what` names the tensor when `count` is not a whole number of blocks. */
export function quantBytes(type: QuantType, count: number, what: string): number {
  const c = CODECS[type];
  if (count % c.blockSize !== 0) {
    throw new Error(`${what}: ${count} values are not a whole number of ${type} blocks of ${c.blockSize}`);
  }
  return (count / c.blockSize) * c.blockBytes;
}

/** Decodes `count` values stored as `type` blocks from `bytes` (dequantize_row_* over the whole run). */
export function dequantize(type: QuantType, bytes: Uint8Array, count: number, what = 'tensor'): Float32Array {
  const c = CODECS[type];
  const need = quantBytes(type, count, what);
  if (bytes.byteLength < need) throw new Error(`${what}: ${type} needs ${need} bytes, has ${bytes.byteLength}`);
  const out = new Float32Array(count);
  for (let b = 0; b < count / c.blockSize; b++) c.dequantizeBlock(bytes, b * c.blockBytes, out, b * c.blockSize);
  return out;
}

/** Encodes `values` as `type` blocks (its length a whole number of blocks). */
export function quantize(type: QuantType, values: Float32Array, what = 'tensor'): Uint8Array {
  const c = CODECS[type];
  const out = new Uint8Array(quantBytes(type, values.length, what));
  for (let b = 0; b < values.length / c.blockSize; b++) c.quantizeBlock(values, b * c.blockSize, out, b * c.blockBytes);
  return out;
}
