import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { kernelsDir } from '../../src/backend/cuda/modules.ts';
import { f16Bits, halfToFloat } from '../../src/primitives/float-bits.ts';
import { E4M3, e4m3Bits } from '../../src/primitives/fp8.ts';
import { Q8_0 } from '../../src/primitives/quant/legacy.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { fromBf16Bits, toBf16Bits } from '../helpers/paged-attention-reference.ts';

function compiler(): string | null {
  try {
    execFileSync('g++', ['--version']);
    return 'g++';
  } catch {
    return null;
  }
}
const cxx = compiler();

// kernels/kv_codec.cuh built for the host: CUDA's intrinsics become their host equivalents (bit
// casts; float rounding and rintf round to nearest even, as on the device). For every bf16 value x (the KV write's
// inputs) and each fp8 scale, fp8_encode(x, 1 / scale); then f16_bits of every bf16 value and of 2^20 float patterns;
// then q8_0 blocks of the values given on stdin (the warp's max and vote done by the harness); then the attention
// tiles' decoders of every byte: fp8x2_to_h2bits (both places of a pair), s8_byte (each of a word's four places).
const HARNESS = `
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <algorithm>
#define __device__
#define __forceinline__ inline
static inline unsigned __float_as_uint(float x) { unsigned u; std::memcpy(&u, &x, 4); return u; }
static inline float __uint_as_float(unsigned u) { float x; std::memcpy(&x, &u, 4); return x; }
static inline float __double2float_rn(double x) { return (float)x; }
static inline float __int_as_float(int u) { float x; std::memcpy(&x, &u, 4); return x; }
using std::min;
#include "kv_codec.cuh"
static const float SCALES[] = {1.f, 0.75f, 0.02f, 3.5f};
int main() {
  for (float s : SCALES) {
    const double inv = 1.0 / (double)s;
    for (unsigned b = 0; b < 65536; b++) putchar(fp8_encode(__uint_as_float(b << 16), inv));
  }
  for (unsigned b = 0; b < 65536; b++) { unsigned short h = f16_bits(__uint_as_float(b << 16)); fwrite(&h, 2, 1, stdout); }
  unsigned x = 12345;
  for (int i = 0; i < (1 << 20); i++) {
    x = x * 1664525u + 1013904223u;
    unsigned short h = f16_bits(__uint_as_float(x));
    fwrite(&h, 2, 1, stdout);
  }
  for (unsigned b = 0; b < 256; b++) {
    const unsigned x = b * 0x01010101u, biased = x ^ 0x80808080u;
    const unsigned h = fp8x2_to_h2bits(x & 0xffffu);
    const float f[4] = {s8_byte<0>(biased), s8_byte<1>(biased), s8_byte<2>(biased), s8_byte<3>(biased)};
    fwrite(&h, 4, 1, stdout);
    fwrite(f, 4, 4, stdout);
  }
  // q8_0 blocks read from stdin (32 floats each), written as ggml blocks: the half scale, then 32 levels.
  float x32[32];
  while (fread(x32, 4, 32, stdin) == 32) {
    float amax = 0.f;
    bool any_nan = false;
    for (float v : x32) { any_nan |= v != v; amax = std::fmax(amax, std::fabs(v)); }
    const float d = kv_q8_scale(amax, any_nan);
    const unsigned short h = f16_bits(d);
    fwrite(&h, 2, 1, stdout);
    for (float v : x32) putchar(kv_q8_level(v, d));
  }
  return 0;
}
`;

/** q8_0 inputs: random bf16 blocks over many magnitudes, then zeros, a NaN, an infinity and exact halves (x / d = k + 0.5). */
function q8Inputs(): Float32Array {
  const r = mulberry32(3);
  const blocks: number[][] = [];
  for (let b = 0; b < 4000; b++) {
    const mag = 2 ** (Math.floor(r() * 40) - 30);
    blocks.push(Array.from({ length: 32 }, () => fromBf16Bits(toBf16Bits((r() * 2 - 1) * mag))));
  }
  blocks.push(new Array(32).fill(0));
  blocks.push(Array.from({ length: 32 }, (_, j) => (j === 7 ? Number.NaN : j - 16)));
  blocks.push(Array.from({ length: 32 }, (_, j) => (j === 3 ? Number.POSITIVE_INFINITY : j)));
  // amax 127: d = 1, so j + 0.5 are ties that round away from zero.
  blocks.push(Array.from({ length: 32 }, (_, j) => (j === 0 ? 127 : (j % 2 ? 1 : -1) * ((j % 60) + 0.5))));
  return Float32Array.from(blocks.flat());
}

test("the CUDA KV write's encoders give the CPU twins' bits for every bf16 input (fp8 at four scales, half scales, q8_0 blocks), and the tiles' decoders every byte's value", {
  skip: cxx ? false : 'g++ not on PATH',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-kv-encode-'));
  try {
    writeFileSync(join(dir, 'harness.cpp'), HARNESS);
    const exe = join(dir, 'harness');
    execFileSync(cxx!, [
      '-O1',
      '-std=c++17',
      '-ffp-contract=off',
      `-I${kernelsDir}`,
      '-o',
      exe,
      join(dir, 'harness.cpp'),
    ]);
    const blocks = q8Inputs();
    const out = execFileSync(exe, { maxBuffer: 1 << 24, input: new Uint8Array(blocks.buffer) });
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    const asFloat = (bits: number) => {
      u32[0] = bits >>> 0;
      return f32[0]!;
    };
    let at = 0;
    for (const s of [1, 0.75, 0.02, 3.5].map(Math.fround)) {
      const inv = 1 / s;
      for (let b = 0; b < 65536; b++, at++) {
        const x = asFloat(b << 16);
        if (out[at] !== e4m3Bits(x * inv))
          assert.fail(`fp8 of bf16 0x${b.toString(16)} (${x}) / ${s}: ${out[at]} != ${e4m3Bits(x * inv)}`);
      }
    }
    const halves = new Uint16Array(out.buffer, out.byteOffset + at, (out.length - at) / 2);
    for (let b = 0; b < 65536; b++) {
      const want = f16Bits(asFloat(b << 16));
      if (halves[b] !== want)
        assert.fail(`f16 of bf16 0x${b.toString(16)}: 0x${halves[b]!.toString(16)} != 0x${want.toString(16)}`);
    }
    let x = 12345;
    for (let i = 0; i < 1 << 20; i++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      const want = f16Bits(asFloat(x));
      if (halves[65536 + i] !== want)
        assert.fail(`f16 of 0x${x.toString(16)}: 0x${halves[65536 + i]!.toString(16)} != 0x${want.toString(16)}`);
    }
    at += 2 * (65536 + (1 << 20));
    // Each byte decoded at each place: e4m3 x 2^-8 as a half (NaN bytes stay numbers here) and the int8, exactly.
    const decoded = new DataView(out.buffer, out.byteOffset + at, 256 * 20);
    for (let b = 0; b < 256; b++) {
      const fp8 = (b & 0x7f) === 0x7f ? (b & 0x80 ? -480 : 480) * 2 ** -8 : E4M3[b]! * 2 ** -8;
      const s8 = (b << 24) >> 24;
      const h = decoded.getUint32(b * 20, true);
      const s8s = [0, 1, 2, 3].map((i) => decoded.getFloat32(b * 20 + 4 + 4 * i, true));
      assert.deepEqual(
        [halfToFloat(h & 0xffff), halfToFloat(h >>> 16), ...s8s],
        [fp8, fp8, s8, s8, s8, s8],
        `byte ${b}`,
      );
    }
    at += 256 * 20;
    const want = new Uint8Array(34);
    for (let b = 0; b < blocks.length / 32; b++, at += 34) {
      Q8_0.quantizeBlock(blocks, b * 32, want, 0);
      // A block with a NaN has a NaN scale (its values decode to NaN on both backends); the NaN's sign bit is the
      // host's (V8's arithmetic) and is not compared.
      const isNaNHalf = (lo: number, hi: number) => (hi & 0x7c) === 0x7c && ((hi & 3) | lo) !== 0;
      if (isNaNHalf(want[0]!, want[1]!)) {
        assert.ok(isNaNHalf(out[at]!, out[at + 1]!), `q8_0 block ${b}: a NaN scale`);
        [want[0], want[1]] = [out[at]!, out[at + 1]!];
      }
      assert.deepEqual(
        [...out.subarray(at, at + 34)],
        [...want],
        `q8_0 block ${b}: ${blocks.subarray(b * 32, b * 32 + 32).join(', ')}`,
      );
    }
    assert.equal(at, out.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
