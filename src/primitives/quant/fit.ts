import { clamp, nearestInt } from './codec.ts';

/**
 * Scale searches for the k-quants' sub-blocks, re-expressed from the ideas of ggml's reference quantizers: try a
 * small grid of step sizes around the obvious one, refit each choice of levels by weighted least squares, keep the
 * best. Simpler than llama.cpp's (no importance matrix, no iterative level flipping); the blocks they produce are
 * ordinary k-quant blocks, so any reader decodes them.
 */

/**
 * (scale, min ≥ 0) so that x ≈ scale·L − min with levels L in 0..nmax, weighted by `w`. The min is clamped at 0
 * (offsets only pull values down), as ggml's format requires. Levels are not returned: callers requantize against
 * the scale and min as they are finally stored.
 */
export function fitAffine(
  x: Float32Array,
  at: number,
  n: number,
  w: Float32Array,
  nmax: number,
  steps: { from: number; step: number; count: number },
): { scale: number; min: number } {
  let lo = x[at];
  let hi = x[at];
  let sw = 0;
  let sx = 0;
  for (let j = 0; j < n; j++) {
    const v = x[at + j];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    sw += w[j];
    sx += w[j] * v;
  }
  if (lo > 0) lo = 0;
  if (hi === lo) {
    return { scale: 0, min: -lo };
  }
  let scale = (hi - lo) / nmax;
  let offset = lo;
  levelsFor(x, at, n, 1 / scale, lo, nmax);
  let bestErr = weightedError(x, at, n, w, scale, offset);
  for (let k = 0; k <= steps.count; k++) {
    levelsFor(x, at, n, (nmax + steps.from + steps.step * k) / (hi - lo), lo, nmax);
    let sl = 0;
    let sl2 = 0;
    let sxl = 0;
    for (let j = 0; j < n; j++) {
      const l = trial[j];
      sl += w[j] * l;
      sl2 += w[j] * l * l;
      sxl += w[j] * l * x[at + j];
    }
    const det = sw * sl2 - sl * sl;
    if (det <= 0) continue;
    let s = (sw * sxl - sx * sl) / det;
    let o = (sl2 * sx - sl * sxl) / det;
    if (o > 0) {
      o = 0;
      s = sxl / sl2;
    }
    const err = weightedError(x, at, n, w, s, o);
    if (err < bestErr) {
      bestErr = err;
      scale = s;
      offset = o;
    }
  }
  return { scale, min: -offset };
}

/** The levels one grid point gives, in `trial` (the largest sub-block is 32 values). */
const trial = new Uint8Array(32);

function levelsFor(x: Float32Array, at: number, n: number, iscale: number, lo: number, nmax: number): void {
  for (let j = 0; j < n; j++) {
    const l = Math.round(iscale * (x[at + j] - lo));
    trial[j] = clamp(l, 0, nmax);
  }
}

function weightedError(x: Float32Array, at: number, n: number, w: Float32Array, scale: number, offset: number) {
  let err = 0;
  for (let j = 0; j < n; j++) {
    const diff = scale * trial[j] + offset - x[at + j];
    err += w[j] * diff * diff;
  }
  return err;
}

/**
 * A signed scale for x ≈ scale·l with l in −nmax..nmax−1 (the value of largest magnitude maps to −nmax, as ggml
 * does, so the asymmetric range is used on its long side), weighted by x² and refined over a grid of step sizes.
 * Levels are not returned: callers requantize against the scale as it is finally stored.
 */
export function fitSymmetric(x: Float32Array, at: number, n: number, nmax: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[at + j];
    if (Math.abs(v) > amax) {
      amax = Math.abs(v);
      max = v;
    }
  }
  if (amax < 1e-15) return 0;
  let bestScale = -max / nmax;
  let bestScore = -1;
  for (let k = -9; k <= 9; k++) {
    const iscale = -(nmax + 0.1 * k) / max;
    let sxl = 0;
    let sl2 = 0;
    for (let j = 0; j < n; j++) {
      const v = x[at + j];
      const l = clamp(nearestInt(iscale * v), -nmax, nmax - 1);
      const w = v * v;
      sxl += w * v * l;
      sl2 += w * l * l;
    }
    // The least-squares scale sxl/sl2 reduces the error by sxl²/sl2: the larger, the better.
    if (sl2 > 0 && (sxl * sxl) / sl2 > bestScore) {
      bestScore = (sxl * sxl) / sl2;
      bestScale = sxl / sl2;
    }
  }
  return bestScale;
}
