import { mulberry32 } from '../../util/random.ts';
import type { QuantType } from '../ggml-types.ts';
import { codecOf, quantBytes, quantize } from './index.ts';

/** Distinct blocks the scales of random weights are drawn from (a prime, so they never line up with rows). */
const POOL = 61;

/** POOL blocks quantized from uniform values in ±`scale`. */
function poolOf(type: QuantType, scale: number, rnd: () => number): Uint8Array {
  const n = POOL * codecOf(type).blockSize;
  return quantize(
    type,
    Float32Array.from({ length: n }, () => (2 * rnd() - 1) * scale),
  );
}

/** The valid blocks random weights take their scales from (a device that makes the levels itself needs only these). */
export function randomBlockPool(type: QuantType, scale: number, seed: number): Uint8Array {
  return poolOf(type, scale, mulberry32(seed));
}

/**
 * Random weights of a quant type made directly as blocks (`--load-format dummy`): every block takes its scales from
 * a small pool of blocks quantized from uniform values in ±`scale`, and random levels. Cheap at any size
 * (quantizing billions of values would take hours), and every block is a valid one of its type.
 */
export function randomBlocks(type: QuantType, count: number, scale: number, seed: number, what: string): Uint8Array {
  const c = codecOf(type);
  const rnd = mulberry32(seed);
  const pool = poolOf(type, scale, rnd);
  const size = quantBytes(type, count, what);
  const words = new Uint32Array(Math.ceil(size / 4));
  for (let i = 0; i < words.length; i++) words[i] = rnd() * 2 ** 32;
  const out = new Uint8Array(words.buffer, 0, size);
  const [start, end] = c.levelBytes;
  for (let off = 0; off < size; off += c.blockBytes) {
    const pick = Math.floor(rnd() * POOL) * c.blockBytes;
    for (let j = 0; j < start; j++) out[off + j] = pool[pick + j]!;
    for (let j = end; j < c.blockBytes; j++) out[off + j] = pool[pick + j]!;
  }
  return out;
}
