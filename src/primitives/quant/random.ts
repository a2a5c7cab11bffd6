import { mulberry32 } from '../../util/random.ts';
import type { QuantType } from '../ggml-types.ts';
import { codecOf, quantBytes, quantize } from './index.ts';

/** Distinct blocks the scales of random weights are drawn from (a prime, so they never line up with rows). */
const POOL = 61;

/**
 * Random weights of a quant type made directly as blocks (`--load-format dummy`): every block takes its scales from
 * a small pool of blocks quantized from uniform values in ±`scale`, and random levels. Cheap at any size
 * (quantizing billions of values would take hours), and every block is a valid one of its type.
 */
export function randomBlocks(type: QuantType, count: number, scale: number, seed: number, what: string): Uint8Array {
  const c = codecOf(type);
  const rnd = mulberry32(seed);
  const pool = quantize(
    type,
    Float32Array.from({ length: POOL * c.blockSize }, () => (2 * rnd() - 1) * scale),
  );
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
