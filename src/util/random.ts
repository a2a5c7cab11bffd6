/**
 * mulberry32: a small seeded generator using only 32-bit integer arithmetic, so its stream is bit-identical on every
 * machine (the demo model's weights depend on it) and a failing randomized test can be replayed from its seed.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
