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

// quant_blocks.cuh's device functions built as host C++: CUDA's half conversion, bit cast, byte permute, uint2 and
// round-to-nearest intrinsics stood in for by their meaning, multiply-add contraction off (as the intrinsics forbid
// it on the device).
const HARNESS = `#include <cstdio>
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
struct uint2 {
  unsigned x, y;
};
static unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const unsigned long long v = ((unsigned long long)y << 32) | x;
  unsigned r = 0;
  for (int n = 0; n < 4; n++) r |= (unsigned)((v >> (8 * ((s >> (4 * n)) & 7))) & 255) << (8 * n);
  return r;
}
static float __fmul_rn(float a, float b) { return a * b; }
static float __fsub_rn(float a, float b) { return a - b; }
#include "quant_blocks.cuh"
int main() {
  std::vector<unsigned char> in;
  int c;
  while ((c = getchar()) != EOF) in.push_back((unsigned char)c);
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
test('quant_blocks.cuh decodes every type exactly as the CPU codecs', {
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
        const raw = execFileSync('sh', ['-c', `"${exe}" < "${join(dir, `${type}.in`)}"`]);
        const got = new Uint32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
        const want = new Uint32Array(dequantize(type, blocks, count).buffer);
        assert.equal(got.length, want.length, type);
        for (let i = 0; i < want.length; i++) {
          if (got[i] !== want[i]) assert.fail(`${type}: value ${i} decodes to bits ${got[i]}, the codec's ${want[i]}`);
        }
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
