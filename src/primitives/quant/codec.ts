import { f16Bits, halfToFloat } from '../float-bits.ts';
import type { QuantType } from '../ggml-types.ts';

/**
 * One ggml block type: `blockSize` values stored in `blockBytes` bytes, little-endian, laid out exactly as ggml's
 * `block_*` structs (ggml-common.h) so blocks read from a GGUF file and blocks written here mean the same thing.
 */
export interface QuantCodec {
  readonly type: QuantType;
  readonly blockSize: number;
  readonly blockBytes: number;
  /** The block's byte range [start, end) that holds only levels: any bytes there make a valid block. */
  readonly levelBytes: readonly [number, number];
  /** Writes the block at `src[off]` as `blockSize` floats at `out[o]`. */
  dequantizeBlock(src: Uint8Array, off: number, out: Float32Array, o: number): void;
  /** Encodes `x[i .. i + blockSize)` as one block at `dst[off]` (every byte of the block is written). */
  quantizeBlock(x: Float32Array, i: number, dst: Uint8Array, off: number): void;
}

/** Every half value, so block scales decode with one lookup. */
export const HALF = Float32Array.from({ length: 65536 }, (_, h) => halfToFloat(h));

/** The IEEE half at `bytes[off]`. */
export function halfAt(bytes: Uint8Array, off: number): number {
  return HALF[bytes[off] | (bytes[off + 1] << 8)];
}

/** Stores `x` as a half at `bytes[off]` and returns the value stored (what a reader will see). */
export function putHalf(bytes: Uint8Array, off: number, x: number): number {
  const h = f16Bits(x);
  bytes[off] = h & 0xff;
  bytes[off + 1] = h >> 8;
  return HALF[h];
}

/**
 * ggml's nearest_int: round to nearest, ties to even. A magnitude below 2^52 plus 2^52 rounds to an integer that way
 * (V8's Math.round is several times slower); from 2^52 on every double is an integer. −0 and NaN stay.
 */
export function nearestInt(x: number): number {
  const a = Math.abs(x);
  return a < 2 ** 52 ? Math.sign(x) * (a + 2 ** 52 - 2 ** 52) : x;
}

export function clamp(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, v));
}
