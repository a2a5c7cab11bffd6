import type { RopeSpec } from '../rope-spec.ts';

/** cos/sin `[T, rotaryDim / 2]` at each position, scaled by the spec's mscale (computed in f32 as HF does). */
export function ropeTables(spec: RopeSpec, positions: Int32Array): { cos: Float32Array; sin: Float32Array } {
  const half = spec.invFreq.length;
  const cos = new Float32Array(positions.length * half);
  const sin = new Float32Array(positions.length * half);
  for (let t = 0; t < positions.length; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(positions[t] * spec.invFreq[i]);
      cos[t * half + i] = Math.cos(angle) * spec.mscale;
      sin[t * half + i] = Math.sin(angle) * spec.mscale;
    }
  }
  return { cos, sin };
}

/**
 * Rotates the leading `rotaryDim` dims of every head of x `[T, heads * headDim]` in place.
 * 'neox' pairs (i, i + rotaryDim/2); 'gptj' pairs (2i, 2i + 1).
 */
export function applyRope(
  x: Float32Array,
  T: number,
  heads: number,
  headDim: number,
  spec: RopeSpec,
  cos: Float32Array,
  sin: Float32Array,
): void {
  const half = spec.rotaryDim / 2;
  const neox = spec.style === 'neox';
  for (let t = 0; t < T; t++) {
    const cb = t * half;
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const a = neox ? base + i : base + 2 * i;
        const b = neox ? a + half : a + 1;
        const x0 = x[a];
        const x1 = x[b];
        const c = cos[cb + i];
        const s = sin[cb + i];
        x[a] = x0 * c - x1 * s;
        x[b] = x1 * c + x0 * s;
      }
    }
  }
}
