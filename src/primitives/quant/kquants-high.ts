import { clamp, halfAt, nearestInt, putHalf, type QuantCodec } from './codec.ts';
import { fitAffine, fitSymmetric } from './fit.ts';

/**
 * Q4_K, Q5_K (eight 32-value sub-blocks) and Q6_K (sixteen 16-value sub-blocks) on 256-value super-blocks.
 *
 * Q4_K (144 bytes): d | dmin | scales[12] | qs[128]. Value e's nibble: byte 32·⌊e/64⌋ + e mod 32 of qs, low nibble
 * when e mod 64 < 32. Sub-block j = ⌊e/32⌋ has a 6-bit scale and min (scaleK4, minK4); value = d·sc·q − dmin·m.
 * Q5_K (176 bytes): d | dmin | scales[12] | qh[32] | qs[128]: Q4_K's nibbles plus a fifth bit, bit ⌊e/32⌋ of
 * qh[e mod 32].
 * Q6_K (210 bytes): ql[128] | qh[64] | scales[16] (int8) | d. Value e = 128·n + 32·k + l (k < 4, l < 32): low
 * nibble of ql[64·n + 32·(k mod 2) + l] (high nibble when k ≥ 2), two high bits at bit 2k of qh[32·n + l], levels
 * stored + 32; sub-block ⌊e/16⌋'s scale × d is its step.
 */

const levels = new Uint8Array(256);
const subScales = new Float32Array(16);
const subMins = new Float32Array(16);
const weights = new Float32Array(32);

/** Sub-block j's 6-bit scale of a Q4_K/Q5_K block whose 12 scale bytes start at `sc` (j < 4 direct, else split). */
export function scaleK4(src: Uint8Array, sc: number, j: number): number {
  return j < 4 ? src[sc + j] & 63 : (src[sc + j + 4] & 15) | ((src[sc + j - 4] >> 6) << 4);
}

/** Sub-block j's 6-bit min, packed alongside the scales. */
export function minK4(src: Uint8Array, sc: number, j: number): number {
  return j < 4 ? src[sc + j + 4] & 63 : (src[sc + j + 4] >> 4) | ((src[sc + j] >> 6) << 4);
}

/** Fits eight 32-value sub-blocks (ggml's weighting: the block's rms plus each value's magnitude) and stores d,
 * dmin and the packed 6-bit scales and mins; then levels 0..nmax against the stored scales. */
function quantizeScaleMin(x: Float32Array, i: number, dst: Uint8Array, off: number, nmax: number, from: number) {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumSq = 0;
    for (let l = 0; l < 32; l++) sumSq += x[i + 32 * j + l] ** 2;
    const rms = Math.sqrt(sumSq / 32);
    for (let l = 0; l < 32; l++) weights[l] = rms + Math.abs(x[i + 32 * j + l]);
    const fit = fitAffine(x, i + 32 * j, 32, weights, nmax, { from, step: 0.1, count: 20 });
    subScales[j] = fit.scale;
    subMins[j] = fit.min;
    maxScale = Math.max(maxScale, fit.scale);
    maxMin = Math.max(maxMin, fit.min);
  }
  const iscale = maxScale > 0 ? 63 / maxScale : 0;
  const imin = maxMin > 0 ? 63 / maxMin : 0;
  const sc = off + 4;
  dst.fill(0, sc, sc + 12);
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(iscale * subScales[j]));
    const lm = Math.min(63, nearestInt(imin * subMins[j]));
    if (j < 4) {
      dst[sc + j] |= ls;
      dst[sc + j + 4] |= lm;
    } else {
      dst[sc + j + 4] = (ls & 15) | ((lm & 15) << 4);
      dst[sc + j - 4] |= (ls >> 4) << 6;
      dst[sc + j] |= (lm >> 4) << 6;
    }
  }
  const d = putHalf(dst, off, maxScale / 63);
  const dmin = putHalf(dst, off + 2, maxMin / 63);
  for (let j = 0; j < 8; j++) {
    const step = d * scaleK4(dst, sc, j);
    const min = dmin * minK4(dst, sc, j);
    for (let l = 0; l < 32; l++) {
      levels[32 * j + l] = step ? clamp(nearestInt((x[i + 32 * j + l] + min) / step), 0, nmax) : 0;
    }
  }
}

/** Packs the low nibbles of 256 levels into 128 bytes at `dst[off]` (Q4_K/Q5_K order). */
function packNibbles(dst: Uint8Array, off: number): void {
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++)
      dst[off + 32 * c + l] = (levels[64 * c + l] & 15) | ((levels[64 * c + 32 + l] & 15) << 4);
  }
}

export const Q4_K: QuantCodec = {
  type: 'q4_k',
  blockSize: 256,
  blockBytes: 144,
  levelBytes: [16, 144],
  dequantizeBlock(src, off, out, o) {
    const d = halfAt(src, off);
    const dmin = halfAt(src, off + 2);
    for (let j = 0; j < 8; j++) {
      const step = d * scaleK4(src, off + 4, j);
      const min = dmin * minK4(src, off + 4, j);
      const qs = off + 16 + 32 * (j >> 1);
      const shift = 4 * (j & 1);
      for (let l = 0; l < 32; l++) out[o + 32 * j + l] = step * ((src[qs + l] >> shift) & 15) - min;
    }
  },
  quantizeBlock(x, i, dst, off) {
    quantizeScaleMin(x, i, dst, off, 15, -1);
    packNibbles(dst, off + 16);
  },
};

export const Q5_K: QuantCodec = {
  type: 'q5_k',
  blockSize: 256,
  blockBytes: 176,
  levelBytes: [16, 176],
  dequantizeBlock(src, off, out, o) {
    const d = halfAt(src, off);
    const dmin = halfAt(src, off + 2);
    for (let j = 0; j < 8; j++) {
      const step = d * scaleK4(src, off + 4, j);
      const min = dmin * minK4(src, off + 4, j);
      const qs = off + 48 + 32 * (j >> 1);
      const shift = 4 * (j & 1);
      for (let l = 0; l < 32; l++) {
        const q = ((src[qs + l] >> shift) & 15) | (((src[off + 16 + l] >> j) & 1) << 4);
        out[o + 32 * j + l] = step * q - min;
      }
    }
  },
  quantizeBlock(x, i, dst, off) {
    quantizeScaleMin(x, i, dst, off, 31, -0.5);
    dst.fill(0, off + 16, off + 48);
    for (let e = 0; e < 256; e++) dst[off + 16 + (e & 31)] |= (levels[e] >> 4) << (e >> 5);
    packNibbles(dst, off + 48);
  },
};

export const Q6_K: QuantCodec = {
  type: 'q6_k',
  blockSize: 256,
  blockBytes: 210,
  levelBytes: [0, 192],
  dequantizeBlock(src, off, out, o) {
    const d = halfAt(src, off + 208);
    for (let e = 0; e < 256; e += 16) {
      const step = d * ((src[off + 192 + (e >> 4)] << 24) >> 24);
      const n = e >> 7;
      const k = (e >> 5) & 3;
      const l0 = e & 31;
      const ql = off + 64 * n + 32 * (k & 1) + l0;
      const qh = off + 128 + 32 * n + l0;
      const lowShift = k < 2 ? 0 : 4;
      for (let l = 0; l < 16; l++) {
        const q = ((src[ql + l] >> lowShift) & 15) | (((src[qh + l] >> (2 * k)) & 3) << 4);
        out[o + e + l] = step * (q - 32);
      }
    }
  },
  quantizeBlock(x, i, dst, off) {
    let maxScale = 0;
    for (let j = 0; j < 16; j++) {
      subScales[j] = fitSymmetric(x, i + 16 * j, 16, 32);
      if (Math.abs(subScales[j]) > Math.abs(maxScale)) maxScale = subScales[j];
    }
    const iscale = maxScale ? -128 / maxScale : 0;
    for (let j = 0; j < 16; j++) dst[off + 192 + j] = Math.min(127, nearestInt(iscale * subScales[j])) & 0xff;
    const d = putHalf(dst, off + 208, iscale ? 1 / iscale : 0);
    for (let j = 0; j < 16; j++) {
      const step = d * ((dst[off + 192 + j] << 24) >> 24);
      for (let l = 0; l < 16; l++) {
        levels[16 * j + l] = step ? clamp(nearestInt(x[i + 16 * j + l] / step), -32, 31) + 32 : 32;
      }
    }
    dst.fill(0, off, off + 192);
    for (let e = 0; e < 256; e++) {
      const n = e >> 7;
      const k = (e >> 5) & 3;
      const l = e & 31;
      dst[off + 64 * n + 32 * (k & 1) + l] |= (levels[e] & 15) << (k < 2 ? 0 : 4);
      dst[off + 128 + 32 * n + l] |= (levels[e] >> 4) << (2 * k);
    }
  },
};
