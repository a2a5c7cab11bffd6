import { clamp, halfAt, nearestInt, putHalf, type QuantCodec } from './codec.ts';
import { fitAffine, fitSymmetric } from './fit.ts';

/**
 * Q2_K and Q3_K: 256-value super-blocks of sixteen 16-value sub-blocks. The 2-bit levels of value e sit in byte
 * 32·⌊e/128⌋ + e mod 32 of `qs`, at bit 2·(⌊e/32⌋ mod 4); sub-block ⌊e/16⌋ owns the value's scale.
 *
 * Q2_K (84 bytes): scales[16] | qs[64] | d | dmin. Sub-block i: low nibble of scales[i] × d is its step, high
 * nibble × dmin its min; value = step·q − min.
 * Q3_K (110 bytes): hmask[32] | qs[64] | scales[12] | d. Value e's third bit is bit ⌊e/32⌋ of hmask[e mod 32]; a
 * clear bit subtracts 4 (levels −4..3). Sub-block i's 6-bit scale (stored + 32): low 4 bits in the low (i < 8) or
 * high (i ≥ 8) nibble of scales[i mod 8], high 2 bits at bit 2·⌊i/4⌋ of scales[8 + i mod 4].
 */

const levels = new Uint8Array(256);
const subScales = new Float32Array(16);
const subMins = new Float32Array(16);
const weights = new Float32Array(16);

/** Packs 256 two-bit levels into 64 bytes at `dst[off]` (the layout described above). */
function pack2Bit(dst: Uint8Array, off: number): void {
  for (let half = 0; half < 2; half++) {
    for (let l = 0; l < 32; l++) {
      const e = 128 * half + l;
      dst[off + 32 * half + l] =
        (levels[e] & 3) | ((levels[e + 32] & 3) << 2) | ((levels[e + 64] & 3) << 4) | ((levels[e + 96] & 3) << 6);
    }
  }
}

export const Q2_K: QuantCodec = {
  type: 'q2_k',
  blockSize: 256,
  blockBytes: 84,
  levelBytes: [16, 80],
  dequantizeBlock(src, off, out, o) {
    const d = halfAt(src, off + 80);
    const dmin = halfAt(src, off + 82);
    for (let e = 0; e < 256; e += 16) {
      const sc = src[off + (e >> 4)];
      const step = d * (sc & 15);
      const min = dmin * (sc >> 4);
      const qs = off + 16 + 32 * (e >> 7) + (e & 31);
      const shift = 2 * ((e >> 5) & 3);
      for (let l = 0; l < 16; l++) out[o + e + l] = step * ((src[qs + l] >> shift) & 3) - min;
    }
  },
  quantizeBlock(x, i, dst, off) {
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(x[i + 16 * j + l]);
      const fit = fitAffine(x, i + 16 * j, 16, weights, 3, { from: -0.5, step: 0.1, count: 15 });
      subScales[j] = fit.scale;
      subMins[j] = fit.min;
      maxScale = Math.max(maxScale, fit.scale);
      maxMin = Math.max(maxMin, fit.min);
    }
    const iscale = maxScale > 0 ? 15 / maxScale : 0;
    const imin = maxMin > 0 ? 15 / maxMin : 0;
    for (let j = 0; j < 16; j++) {
      dst[off + j] =
        clamp(nearestInt(iscale * subScales[j]), 0, 15) | (clamp(nearestInt(imin * subMins[j]), 0, 15) << 4);
    }
    const d = putHalf(dst, off + 80, maxScale / 15);
    const dmin = putHalf(dst, off + 82, maxMin / 15);
    for (let j = 0; j < 16; j++) {
      const step = d * (dst[off + j] & 15);
      const min = dmin * (dst[off + j] >> 4);
      for (let l = 0; l < 16; l++) {
        levels[16 * j + l] = step ? clamp(nearestInt((x[i + 16 * j + l] + min) / step), 0, 3) : 0;
      }
    }
    pack2Bit(dst, off + 16);
  },
};

/** Q3_K sub-block i's stored 6-bit scale (0..63; the scale is this − 32). */
function q3Scale(src: Uint8Array, scales: number, i: number): number {
  const low = i < 8 ? src[scales + i] & 15 : src[scales + i - 8] >> 4;
  return low | (((src[scales + 8 + (i & 3)] >> (2 * (i >> 2))) & 3) << 4);
}

export const Q3_K: QuantCodec = {
  type: 'q3_k',
  blockSize: 256,
  blockBytes: 110,
  levelBytes: [0, 96],
  dequantizeBlock(src, off, out, o) {
    const d = halfAt(src, off + 108);
    for (let e = 0; e < 256; e += 16) {
      const step = d * (q3Scale(src, off + 96, e >> 4) - 32);
      const qs = off + 32 + 32 * (e >> 7) + (e & 31);
      const shift = 2 * ((e >> 5) & 3);
      const hm = off + (e & 31);
      const bit = e >> 5;
      for (let l = 0; l < 16; l++) {
        const q = ((src[qs + l] >> shift) & 3) - ((src[hm + l] >> bit) & 1 ? 0 : 4);
        out[o + e + l] = step * q;
      }
    }
  },
  quantizeBlock(x, i, dst, off) {
    let maxScale = 0;
    for (let j = 0; j < 16; j++) {
      subScales[j] = fitSymmetric(x, i + 16 * j, 16, 4);
      if (Math.abs(subScales[j]) > Math.abs(maxScale)) maxScale = subScales[j];
    }
    dst.fill(0, off, off + 110);
    const iscale = maxScale ? -32 / maxScale : 0;
    for (let j = 0; j < 16; j++) {
      const l = clamp(nearestInt(iscale * subScales[j]), -32, 31) + 32;
      dst[off + 96 + (j & 7)] |= (l & 15) << (j < 8 ? 0 : 4);
      dst[off + 96 + 8 + (j & 3)] |= (l >> 4) << (2 * (j >> 2));
    }
    const d = putHalf(dst, off + 108, iscale ? 1 / iscale : 0);
    for (let j = 0; j < 16; j++) {
      const step = d * (q3Scale(dst, off + 96, j) - 32);
      for (let l = 0; l < 16; l++) {
        levels[16 * j + l] = step ? clamp(nearestInt(x[i + 16 * j + l] / step), -4, 3) + 4 : 4;
      }
    }
    for (let e = 0; e < 256; e++) {
      if (levels[e] > 3) {
        dst[off + (e & 31)] |= 1 << (e >> 5);
        levels[e] -= 4;
      }
    }
    pack2Bit(dst, off + 32);
  },
};
