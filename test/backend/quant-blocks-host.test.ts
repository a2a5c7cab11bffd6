import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { kernelsDir } from '../../src/backend/cuda/modules.ts';
import { QTYPE } from '../../src/backend/cuda/quant-kernels.ts';
import type { QuantType } from '../../src/primitives/ggml-types.ts';
import { codecOf, dequantize } from '../../src/primitives/quant/index.ts';
import { randomBlocks } from '../../src/primitives/quant/random.ts';

const run = promisify(execFile);

function hasGxx(): boolean {
  try {
    execFileSync('g++', ['--version']);
    return true;
  } catch {
    return false;
  }
}

// quant_blocks.cuh's and quant_groups.cuh's device functions built as host C++: CUDA's half conversion, bit cast,
// byte permute, funnel shift, dp4a, vector types and round-to-nearest intrinsics stood in for by their meaning,
// multiply-add contraction off (as the intrinsics forbid it on the device). With no argument it writes every 8-value
// chunk's values; with "groups", every 32-value group's levels and its halves' steps and mins.
const PRELUDE = `#include <cstdio>
#include <cstring>
#include <vector>
#define __device__
#define __forceinline__ inline
static unsigned short __ushort_as_half(unsigned short h) { return h; }
static float __half2float(unsigned short h) {
  const unsigned s = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023;
  unsigned bits;
  if (e == 0 && m == 0) bits = s << 31;
  else if (e == 0) {
    float f = (float)m / 16777216.f;
    return s ? -f : f;
  } else if (e == 31) bits = (s << 31) | 0x7f800000u | (m << 13);
  else bits = (s << 31) | ((e + 112) << 23) | (m << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}
static float __int_as_float(unsigned u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
#define __align__(n) alignas(n)
struct uint2 {
  unsigned x, y;
};
struct uint4 {
  unsigned x, y, z, w;
};
static unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned s) {
  return (unsigned)((((unsigned long long)hi << 32) | lo) >> (s & 31));
}
static int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; i++) c += (signed char)(a >> (8 * i)) * (signed char)(b >> (8 * i));
  return c;
}
static unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const unsigned long long v = ((unsigned long long)y << 32) | x;
  unsigned r = 0;
  for (int n = 0; n < 4; n++) r |= (unsigned)((v >> (8 * ((s >> (4 * n)) & 7))) & 255) << (8 * n);
  return r;
}
static float __fmul_rn(float a, float b) { return a * b; }
static float __fsub_rn(float a, float b) { return a - b; }
`;
const HARNESS = `${PRELUDE}
#include "quant_blocks.cuh"
#include "quant_groups.cuh"
int main(int argc, char** argv) {
  std::vector<unsigned char> in;
  int c;
  while ((c = getchar()) != EOF) in.push_back((unsigned char)c);
  if (argc > 1) {
    const long long groups = (long long)in.size() / QBYTES * QGROUPS;
    std::vector<float> out(groups * 36);
    for (long long i = 0; i < groups; i++) {
      q_group g;
      qgroup(in.data() + i / QGROUPS * QBYTES, (int)(i % QGROUPS), g);
      for (int v = 0; v < 32; v++) out[i * 36 + v] = (float)(signed char)(g.w[v / 4] >> (8 * (v % 4)));
      const float maps[4] = {g.step[0], g.min[0], g.step[1], g.min[1]};
      memcpy(&out[i * 36 + 32], maps, sizeof maps);
    }
    fwrite(out.data(), 4, out.size(), stdout);
    return 0;
  }
  const long long chunks = (long long)in.size() / QBYTES * QCHUNKS;
  std::vector<float> out(chunks * 8);
  for (long long i = 0; i < chunks; i++) {
    float v[8];
    qdecode_row8(in.data(), (int)i, v);
    memcpy(&out[i * 8], v, sizeof v);
  }
  fwrite(out.data(), 4, out.size(), stdout);
}
`;

// The GPU's decoding is checked on the device (test/gpu/quant-kernels.test.ts); this checks its one source of block
// layouts here, bit for bit against the CPU codecs, so a layout slip cannot wait for a GPU.
test('quant_blocks.cuh decodes every type exactly as the CPU codecs; quant_groups.cuh to levels and maps that mean the same', {
  skip: !hasGxx() && 'g++ not on PATH',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-qblocks-'));
  try {
    writeFileSync(join(dir, 'harness.cpp'), HARNESS);
    await Promise.all(
      (Object.keys(QTYPE) as QuantType[]).map(async (type) => {
        const exe = join(dir, type);
        const args = ['-O1', '-ffp-contract=off', `-DQTYPE=${QTYPE[type]}`, `-I${kernelsDir}`, '-o', exe];
        await run('g++', [...args, join(dir, 'harness.cpp')]);
        const c = codecOf(type);
        const count = 64 * c.blockSize;
        const blocks = randomBlocks(type, count, 0.3, 7, type);
        writeFileSync(join(dir, `${type}.in`), blocks);
        const input = join(dir, `${type}.in`);
        const raw = execFileSync('sh', ['-c', `"${exe}" < "${input}"`]);
        const got = new Uint32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
        const values = dequantize(type, blocks, count);
        const want = new Uint32Array(values.buffer);
        assert.equal(got.length, want.length, type);
        for (let i = 0; i < want.length; i++) {
          if (got[i] !== want[i]) assert.fail(`${type}: value ${i} decodes to bits ${got[i]}, the codec's ${want[i]}`);
        }
        // The integer GEMV's groups: step * level - min in float64 is the codec's value up to the codec's two float
        // roundings (a wrong level, bit or scale is off by at least a step).
        const rawGroups = execFileSync('sh', ['-c', `"${exe}" groups < "${input}"`]);
        const groups = new Float32Array(rawGroups.buffer, rawGroups.byteOffset, rawGroups.byteLength / 4);
        assert.equal(groups.length, (count / 32) * 36, `${type}: groups`);
        for (let v = 0; v < count; v++) {
          const at = Math.floor(v / 32) * 36;
          const level = groups[at + (v % 32)]!;
          const h = (v % 32) >> 4;
          const [step, min] = [groups[at + 32 + 2 * h]!, groups[at + 33 + 2 * h]!];
          assert.ok(Number.isInteger(level) && level >= -128 && level <= 127, `${type}: value ${v}: level ${level}`);
          const value = step * level - min;
          const bound = 2 ** -22 * (Math.abs(step * level) + Math.abs(min));
          if (!(Math.abs(value - values[v]!) <= bound))
            assert.fail(
              `${type}: value ${v}: group decodes ${step} * ${level} - ${min} = ${value}, codec ${values[v]}`,
            );
        }
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// quant_gemm_decode.cuh: each 256-value run of a row copied to every offset within a 16-byte chunk its blocks'
// alignment allows (as the GEMM's raw ring holds it), each 32-value sub-block decoded; values in order per offset.
const GEMM_HARNESS = `${PRELUDE}
typedef unsigned char u8;
#include "quant_gemm_decode.cuh"
int main() {
  std::vector<unsigned char> in;
  int c;
  while ((c = getchar()) != EOF) in.push_back((unsigned char)c);
  const long long runs = (long long)in.size() / QG_RUN_BYTES;
  alignas(16) unsigned char buf[16 * QG_RUN_CHUNKS + 16];
  std::vector<float> out;
  for (int off = 0; off < 16; off += QALIGN) {
    for (long long r = 0; r < runs; r++) {
      memset(buf, 0xA5, sizeof buf);
      memcpy(buf + off, in.data() + r * QG_RUN_BYTES, QG_RUN_BYTES);
      for (int sb = 0; sb < 8; sb++) {
        qg_sub s;
        qg_prepare(buf + off, sb, s);
        for (int j = 0; j < 4; j++) {
          float f[8];
          qg_values8(s, j, f);
          out.insert(out.end(), f, f + 8);
        }
      }
    }
  }
  fwrite(out.data(), 4, out.size(), stdout);
}
`;

test('quant_gemm_decode.cuh decodes q8_0, q4_k, q5_k and q6_k runs at every offset exactly as the CPU codecs', {
  skip: !hasGxx() && 'g++ not on PATH',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-qgemm-'));
  try {
    writeFileSync(join(dir, 'harness.cpp'), GEMM_HARNESS);
    await Promise.all(
      (['q8_0', 'q4_k', 'q5_k', 'q6_k'] as const).map(async (type) => {
        const exe = join(dir, type);
        const args = ['-O1', '-ffp-contract=off', `-DQTYPE=${QTYPE[type]}`, `-I${kernelsDir}`, '-o', exe];
        await run('g++', [...args, join(dir, 'harness.cpp')]);
        const count = 3 * 256;
        const blocks = randomBlocks(type, count, 0.3, 11, type);
        const input = join(dir, `${type}.in`);
        writeFileSync(input, blocks);
        const raw = execFileSync('sh', ['-c', `"${exe}" < "${input}"`]);
        const got = new Uint32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
        const want = new Uint32Array(dequantize(type, blocks, count).buffer);
        // q4_k / q5_k blocks are 16-byte multiples (one offset); q8_0's and q6_k's are 2-byte aligned (eight).
        const offsets = type === 'q4_k' || type === 'q5_k' ? 1 : 8;
        assert.equal(got.length, offsets * count, `${type}: values decoded`);
        for (let i = 0; i < got.length; i++) {
          if (got[i] !== want[i % count])
            assert.fail(
              `${type}: offset ${2 * Math.floor(i / count)}, value ${i % count} decodes to bits ${got[i]}, the codec's ${want[i % count]}`,
            );
        }
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
