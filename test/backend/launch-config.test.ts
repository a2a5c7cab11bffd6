import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import {
  ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
  LAUNCH_ATTRIBUTE,
  LAUNCH_CONFIG,
  writeLaunchShape,
  writeLaunchTarget,
  writeProgrammaticSerialization,
} from '../../src/backend/cuda/launch-config.ts';

test('a launch config and its PDL attribute are packed at the offsets of cuda.h', () => {
  const bytes = new Uint8Array(LAUNCH_CONFIG.bytes + LAUNCH_ATTRIBUTE.bytes).fill(0xee);
  const view = new DataView(bytes.buffer);
  writeLaunchTarget(view, 0x1122334455667788n, 0x0a0b0c0d0e0f1011n, 1);
  writeLaunchShape(view, [132, 2], [256, 1, 4], 49152);
  writeProgrammaticSerialization(view, LAUNCH_CONFIG.bytes);
  const u32 = (o: number) => view.getUint32(o, true);
  assert.deepEqual([0, 4, 8, 12, 16, 20, 24].map(u32), [132, 2, 1, 256, 1, 4, 49152]);
  assert.equal(u32(28), 0xeeeeeeee, 'bytes 28..31 are padding before the stream pointer');
  assert.equal(view.getBigUint64(32, true), 0x1122334455667788n);
  assert.equal(view.getBigUint64(40, true), 0x0a0b0c0d0e0f1011n);
  assert.equal(u32(48), 1);
  const a = LAUNCH_CONFIG.bytes;
  assert.equal(u32(a), ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
  assert.equal(u32(a + 8), 1, 'programmaticStreamSerializationAllowed, the value union’s first int');
  for (let o = 4; o < LAUNCH_ATTRIBUTE.bytes; o += 4) if (o !== 8) assert.equal(u32(a + o), 0, `attribute byte ${o}`);
});

/** cuda.h of a local CUDA toolkit, if there is one. */
function cudaHeader(): string | null {
  const dirs = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].filter(Boolean) as string[];
  try {
    const nvcc = execFileSync('which', ['nvcc'], { encoding: 'utf8' }).trim();
    if (nvcc) dirs.unshift(join(dirname(realpathSync(nvcc)), '..'));
  } catch {}
  for (const d of dirs) if (existsSync(join(d, 'include', 'cuda.h'))) return join(d, 'include', 'cuda.h');
  return null;
}

function hasCompiler(): boolean {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const header = cudaHeader();
const skip = !header ? 'no cuda.h (CUDA toolkit) here' : !hasCompiler() ? 'no C compiler (cc)' : false;

test('the layout constants match cuda.h (sizeof / offsetof through the C compiler)', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-launch-'));
  try {
    writeFileSync(
      join(dir, 'layout.c'),
      `#include <stdio.h>
#include <stddef.h>
#include <cuda.h>
int main(void) {
  printf("%zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %d\\n", sizeof(CUlaunchConfig), offsetof(CUlaunchConfig, gridDimX),
         offsetof(CUlaunchConfig, blockDimX), offsetof(CUlaunchConfig, sharedMemBytes),
         offsetof(CUlaunchConfig, hStream), offsetof(CUlaunchConfig, attrs), offsetof(CUlaunchConfig, numAttrs),
         sizeof(CUlaunchAttribute), offsetof(CUlaunchAttribute, id), offsetof(CUlaunchAttribute, value),
         (int)CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
  return 0;
}
`,
    );
    execFileSync('cc', ['-I', dirname(header!), '-o', join(dir, 'layout'), join(dir, 'layout.c')]);
    const got = execFileSync(join(dir, 'layout'), { encoding: 'utf8' }).trim().split(' ').map(Number);
    const c = LAUNCH_CONFIG;
    const a = LAUNCH_ATTRIBUTE;
    assert.deepEqual(got, [
      c.bytes,
      c.gridDimX,
      c.blockDimX,
      c.sharedMemBytes,
      c.hStream,
      c.attrs,
      c.numAttrs,
      a.bytes,
      a.id,
      a.value,
      ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
