import assert from 'node:assert/strict';
import { test } from 'node:test';
import { f16Bits } from '../../../src/primitives/float-bits.ts';
import type { QuantType } from '../../../src/primitives/ggml-types.ts';
import { toFloat32 } from '../../../src/primitives/host-tensor.ts';
import { codecOf, dequantize } from '../../../src/primitives/quant/index.ts';

/**
 * Hand-built blocks: each field is set where ggml's block struct puts it (ggml-common.h), and the expected values
 * are worked out from dequantize_row_*'s formula by hand, so a wrong offset, nibble, shift or sign shows up.
 */

function block(type: QuantType, fill: (b: Uint8Array, half: (off: number, x: number) => void) => void): Uint8Array {
  const b = new Uint8Array(codecOf(type).blockBytes);
  fill(b, (off, x) => {
    const h = f16Bits(x);
    b[off] = h & 0xff;
    b[off + 1] = h >> 8;
  });
  return b;
}

function values(type: QuantType, b: Uint8Array): Float32Array {
  return dequantize(type, b, codecOf(type).blockSize);
}

test('Q8_0: int8 values times the half scale d', () => {
  const b = block('q8_0', (b, half) => {
    half(0, 0.5);
    b[2] = 0x80; // -128
    b[3] = 0xff; // -1
    b[4] = 1;
    b[33] = 127;
  });
  const v = values('q8_0', b);
  assert.deepEqual([v[0], v[1], v[2], v[3], v[31]], [-64, -0.5, 0.5, 0, 63.5]);
});

test('Q4_0: low nibble is value j, high nibble value j + 16, both minus 8', () => {
  const b = block('q4_0', (b, half) => {
    half(0, 2);
    b[2] = 0x1f;
    b[17] = 0x80;
  });
  const v = values('q4_0', b);
  assert.deepEqual([v[0], v[16], v[15], v[31], v[1]], [14, -14, -16, 0, -16]);
});

test('Q4_1: nibbles times d plus the half offset m', () => {
  const b = block('q4_1', (b, half) => {
    half(0, 0.5);
    half(2, -1);
    b[4 + 3] = 0xa5;
  });
  const v = values('q4_1', b);
  assert.deepEqual([v[3], v[19], v[0]], [1.5, 4, -1]);
});

test('Q5_0: the fifth bit of value j is bit j of the 32-bit qh (value j + 16: bit j + 16)', () => {
  const b = block('q5_0', (b, half) => {
    half(0, 1);
    // qh = bits 2 and 18 (byte 0 bit 2, byte 2 bit 2); bit 31 for value 31.
    b[2] = 0x04;
    b[4] = 0x04;
    b[5] = 0x80;
    b[6 + 2] = 0x31;
    b[6 + 15] = 0x70;
  });
  const v = values('q5_0', b);
  assert.deepEqual([v[2], v[18], v[5], v[31], v[15]], [1, 3, -16, 7, -16]);
});

test('Q5_1: five-bit levels times d plus m', () => {
  const b = block('q5_1', (b, half) => {
    half(0, 1);
    half(2, 10);
    b[4 + 3] = 0x80; // qh bit 31
    b[8 + 15] = 0x20;
    b[8] = 0x0f;
  });
  const v = values('q5_1', b);
  assert.deepEqual([v[31], v[15], v[0], v[16]], [2 + 16 + 10, 10, 25, 10]);
});

test('Q2_K: scales[i] low nibble × d is the step, high nibble × dmin the min; 2-bit levels in 32-byte rows', () => {
  const b = block('q2_k', (b, half) => {
    half(80, 1);
    half(82, 0.5);
    b[5] = 0x32; // sub-block 5 (values 80..95): scale 2, min 3
    b[12] = 0x1f; // sub-block 12 (values 192..207): scale 15, min 1
    b[16 + 16] = 3 << 4; // value 80: byte 16, bits 4-5 (row 0, ⌊80/32⌋ mod 4 = 2)
    b[16 + 32 + 8] = 1 << 4; // value 200: byte 32 + 8, bits 4-5
    b[16 + 32 + 31] = 2 << 6; // value 255: byte 63, bits 6-7
  });
  const v = values('q2_k', b);
  assert.equal(v[80], 2 * 3 - 1.5);
  assert.equal(v[81], -1.5);
  assert.equal(v[200], 15 * 1 - 0.5);
  assert.equal(v[255], 0); // sub-block 15: scale 0, min 0
  assert.equal(v[0], 0);
});

test('Q3_K: 6-bit scales split over low nibbles and 2-bit high fields; a clear hmask bit subtracts 4', () => {
  const b = block('q3_k', (b, half) => {
    half(108, 0.25);
    // Sub-block 1 (values 16..31): scale 0b10_0101 = 37 → 37 − 32 = 5: low nibble in scales[1], high bits 0-1 of scales[9].
    b[96 + 1] = 0x05;
    b[96 + 9] = 0b10;
    // Sub-block 13 (values 208..223): scale 0b01_1000 = 24 → −8: high nibble of scales[5], bits 6-7 of scales[9].
    b[96 + 5] |= 0x80;
    b[96 + 9] |= 0b01 << 6;
    // Value 17: byte 32 + 17, bits 0-1 = 3, hmask[17] bit 0 set → level 3.
    b[32 + 17] = 3;
    b[17] = 1;
    // Value 210: ⌊210/128⌋ = 1 → byte 32 + 32 + 18, ⌊210/32⌋ mod 4 = 2 → bits 4-5 = 1; hmask[18] bit 6 clear → 1 − 4.
    b[32 + 32 + 18] = 1 << 4;
  });
  const v = values('q3_k', b);
  assert.equal(v[17], 0.25 * 5 * 3);
  assert.equal(v[16], 0.25 * 5 * -4);
  assert.equal(v[210], 0.25 * -8 * -3);
  assert.equal(v[0], 0.25 * -32 * -4); // scale field 0 → −32, level 0 − 4
});

test('Q4_K: 6-bit scale/min pairs (j < 4 direct, j ≥ 4 split), nibbles in 32-byte rows per 64 values', () => {
  const b = block('q4_k', (b, half) => {
    half(0, 0.5);
    half(2, 0.25);
    b[4 + 1] = 33 | (1 << 6); // sub-block 1: scale 33; bits 6-7 are sub-block 5's scale high bits
    b[4 + 5] = 4 | (2 << 6); // sub-block 1: min 4; bits 6-7 are sub-block 5's min high bits
    b[4 + 9] = 0x73; // sub-block 5: scale low 3, min low 7 → scale 16 + 3, min 32 + 7
    b[16 + 5] = 0x90; // value 37 (sub-block 1, high nibble) = 9; value 5 (low nibble) = 0
    b[16 + 64 + 2] = 0xc0; // value 128 + 32 + 2 = 162 (sub-block 5) = 12
  });
  const v = values('q4_k', b);
  assert.equal(v[37], 0.5 * 33 * 9 - 0.25 * 4);
  assert.equal(v[5], 0);
  assert.equal(v[162], 0.5 * 19 * 12 - 0.25 * 39);
  assert.equal(v[160], -0.25 * 39);
});

test('Q5_K: Q4_K plus a fifth bit, bit ⌊e/32⌋ of qh[e mod 32]', () => {
  const b = block('q5_k', (b, half) => {
    half(0, 1);
    half(2, 1);
    b[4 + 3] = 2; // sub-block 3: scale 2, min 0
    b[4 + 11] = 0x51; // sub-block 7: scale low 1, min low 5
    b[16 + 7] = 1 << 3; // value 3·32 + 7 = 103: fifth bit
    b[48 + 32 + 7] = 0x20; // value 103: byte 32 + 7, high nibble = 2
    b[16 + 31] = 1 << 7; // value 255: fifth bit
    b[48 + 96 + 31] = 0xf0; // value 255: high nibble 15
  });
  const v = values('q5_k', b);
  assert.equal(v[103], 2 * (16 + 2));
  assert.equal(v[255], 1 * (16 + 15) - 5);
  assert.equal(v[71], 0);
});

test('Q6_K: low nibbles in ql, 2-bit highs in qh, int8 sub-block scales, levels stored + 32', () => {
  const b = block('q6_k', (b, half) => {
    half(208, 0.5);
    b[192 + 0] = 2;
    b[192 + 6] = 0xfd; // sub-block 6 (values 96..111): scale −3
    b[192 + 15] = 1;
    b[0] = 0x0f; // value 0: low nibble 15
    b[128] = 0b11; // value 0: high bits 3 → level 63 − 32 = 31
    b[32 + 1] = 0x70; // value 96 + 1 (k = 3): high nibble of ql[32 + 1] = 7
    b[128 + 1] = 0b01 << 6; // value 97: high bits 1 → 23 − 32 = −9
    b[64 + 32 + 31] = 0xa0; // value 255 (n 1, k 3, l 31): ql[127] high nibble 10, qh[191] bits 6-7 = 0
  });
  const v = values('q6_k', b);
  assert.equal(v[0], 0.5 * 2 * 31);
  assert.equal(v[97], 0.5 * -3 * -9);
  assert.equal(v[255], 0.5 * 1 * (10 - 32));
  assert.equal(v[1], 0.5 * 2 * -32);
});

test('toFloat32 dequantizes a quantized HostTensor and names it when its bytes are short', () => {
  const b = block('q8_0', (b, half) => {
    half(0, 1);
    b[2] = 5;
  });
  const two = new Uint8Array([...b, ...b]);
  assert.equal(toFloat32({ name: 'w', shape: [2, 32], dtype: 'q8_0', bytes: two })[32], 5);
  assert.throws(
    () => toFloat32({ name: 'blk.0.w', shape: [3, 32], dtype: 'q8_0', bytes: two }),
    /blk\.0\.w: q8_0 needs 102 bytes/,
  );
  assert.throws(
    () => toFloat32({ name: 'w', shape: [1, 48], dtype: 'q8_0', bytes: two }),
    /w: 48 values are not a whole/,
  );
});
