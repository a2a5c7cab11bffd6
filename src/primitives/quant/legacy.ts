import { halfAt, putHalf, type QuantCodec } from './codec.ts';

/**
 * The 32-value types (ggml's "legacy" quants): one half scale d (and for _1 types a half offset m) per block.
 * Nibble j of a Q4/Q5 block holds value j in its low bits and value j + 16 in its high bits; Q5's fifth bits sit in
 * a 32-bit mask, bit j for value j. Quantizers follow ggml's reference: the symmetric types take the signed value of
 * largest magnitude as −8 (Q4_0) or −16 (Q5_0) steps, the _1 types spread [min, max] over the levels.
 */

/** ggml's quantizers compute in float32: each step rounded so, a level lands where theirs does. */
const f32 = Math.fround;

/** The value of largest magnitude, sign kept. */
function signedMax(x: Float32Array, i: number, n: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[i + j];
    if (Math.abs(v) > amax) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

function minMax(x: Float32Array, i: number, n: number): [number, number] {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < n; j++) {
    const v = x[i + j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

export const Q8_0: QuantCodec = {
  type: 'q8_0',
  blockSize: 32,
  blockBytes: 34,
  levelBytes: [2, 34],
  dequantizeBlock(src, off, out, o) {
    const d = halfAt(src, off);
    for (let j = 0; j < 32; j++) out[o + j] = ((src[off + 2 + j] << 24) >> 24) * d;
  },
  quantizeBlock(x, i, dst, off) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i + j]));
    const d = f32(amax / 127);
    const id = d ? f32(1 / d) : 0;
    putHalf(dst, off, d);
    // roundf: halves away from zero.
    for (let j = 0; j < 32; j++) {
      const v = f32(x[i + j] * id);
      dst[off + 2 + j] = (Math.sign(v) * Math.round(Math.abs(v))) & 0xff;
    }
  },
};

export const Q4_0: QuantCodec = {
  type: 'q4_0',
  blockSize: 32,
  blockBytes: 18,
  levelBytes: [2, 18],
  dequantizeBlock(src, off, out, o) {
    const d = halfAt(src, off);
    for (let j = 0; j < 16; j++) {
      const q = src[off + 2 + j];
      out[o + j] = ((q & 15) - 8) * d;
      out[o + j + 16] = ((q >> 4) - 8) * d;
    }
  },
  quantizeBlock(x, i, dst, off) {
    const d = f32(signedMax(x, i, 32) / -8);
    const id = d ? f32(1 / d) : 0;
    putHalf(dst, off, d);
    const level = (v: number) => Math.min(15, Math.trunc(f32(f32(v * id) + 8.5)));
    for (let j = 0; j < 16; j++) dst[off + 2 + j] = level(x[i + j]) | (level(x[i + j + 16]) << 4);
  },
};

export const Q4_1: QuantCodec = {
  type: 'q4_1',
  blockSize: 32,
  blockBytes: 20,
  levelBytes: [4, 20],
  dequantizeBlock(src, off, out, o) {
    const d = halfAt(src, off);
    const m = halfAt(src, off + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[off + 4 + j];
      out[o + j] = (q & 15) * d + m;
      out[o + j + 16] = (q >> 4) * d + m;
    }
  },
  quantizeBlock(x, i, dst, off) {
    const [min, max] = minMax(x, i, 32);
    const d = f32(f32(max - min) / 15);
    const id = d ? f32(1 / d) : 0;
    putHalf(dst, off, d);
    putHalf(dst, off + 2, min);
    const level = (v: number) => Math.min(15, Math.trunc(f32(f32(f32(v - min) * id) + 0.5)));
    for (let j = 0; j < 16; j++) dst[off + 4 + j] = level(x[i + j]) | (level(x[i + j + 16]) << 4);
  },
};

/** The 5-bit levels of a Q5 block whose nibbles start at `qs` and whose fifth bits are the u32 at `qh`. */
function q5Levels(src: Uint8Array, qh: number, qs: number, level: (j: number, q: number) => void): void {
  const high = src[qh] | (src[qh + 1] << 8) | (src[qh + 2] << 16) | (src[qh + 3] << 24);
  for (let j = 0; j < 16; j++) {
    const q = src[qs + j];
    level(j, (q & 15) | (((high >>> j) & 1) << 4));
    level(j + 16, (q >> 4) | (((high >>> (j + 16)) & 1) << 4));
  }
}

/** Packs 32 five-bit levels as a Q5 block's fifth-bit mask at `qh` and nibbles at `qs`. */
function packQ5(levels: Uint8Array, dst: Uint8Array, qh: number, qs: number): void {
  let high = 0;
  for (let j = 0; j < 16; j++) {
    const a = levels[j];
    const b = levels[j + 16];
    dst[qs + j] = (a & 15) | ((b & 15) << 4);
    high |= ((a >> 4) << j) | ((b >> 4) << (j + 16));
  }
  for (let k = 0; k < 4; k++) dst[qh + k] = (high >>> (8 * k)) & 0xff;
}

const levels32 = new Uint8Array(32);

export const Q5_0: QuantCodec = {
  type: 'q5_0',
  blockSize: 32,
  blockBytes: 22,
  levelBytes: [2, 22],
  dequantizeBlock(src, off, out, o) {
    const d = halfAt(src, off);
    q5Levels(src, off + 2, off + 6, (j, q) => {
      out[o + j] = (q - 16) * d;
    });
  },
  quantizeBlock(x, i, dst, off) {
    const d = f32(signedMax(x, i, 32) / -16);
    const id = d ? f32(1 / d) : 0;
    putHalf(dst, off, d);
    for (let j = 0; j < 32; j++) levels32[j] = Math.min(31, Math.trunc(f32(f32(x[i + j] * id) + 16.5)));
    packQ5(levels32, dst, off + 2, off + 6);
  },
};

export const Q5_1: QuantCodec = {
  type: 'q5_1',
  blockSize: 32,
  blockBytes: 24,
  levelBytes: [4, 24],
  dequantizeBlock(src, off, out, o) {
    const d = halfAt(src, off);
    const m = halfAt(src, off + 2);
    q5Levels(src, off + 4, off + 8, (j, q) => {
      out[o + j] = q * d + m;
    });
  },
  quantizeBlock(x, i, dst, off) {
    const [min, max] = minMax(x, i, 32);
    const d = f32(f32(max - min) / 31);
    const id = d ? f32(1 / d) : 0;
    putHalf(dst, off, d);
    putHalf(dst, off + 2, min);
    for (let j = 0; j < 32; j++) {
      levels32[j] = Math.min(31, Math.trunc(f32(f32(f32(x[i + j] - min) * id) + 0.5)));
    }
    packQ5(levels32, dst, off + 4, off + 8);
  },
};
