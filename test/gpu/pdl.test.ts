import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { loadModel } from '../../src/models/load.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip } from '../helpers/gpu.ts';
import { PagedSession } from '../helpers/paged-session.ts';

const gpu = gpuSkip();
const fixture = modelFixture('tiny-llama');

/** A prompt, then decode steps through the CUDA graphs (bf16, GEMV path); every step's logits. */
function run(dir: string, tokens: { prompt: number[]; decode: number[] }): Float32Array[] {
  const model = loadModel(dir, new CudaBackend({ dtype: 'bf16', graphs: true }));
  const session = new PagedSession(model, 16);
  const out = [session.step([{ seq: 0, tokens: tokens.prompt }])[0]!];
  for (const t of tokens.decode) out.push(session.step([{ seq: 0, tokens: [t] }])[0]!);
  return out;
}

// Every kernel waits on its predecessor before touching shared data, so overlapping launches must not change a bit.
test('programmatic dependent launch: prefill and graph-replayed decode logits bit-identical with PDL on and off', {
  skip: gpu || fixture.skip,
}, (t) => {
  const drv = CudaDriver.open();
  if (!drv.pdlAvailable) {
    t.skip(`PDL unavailable (sm_${drv.info.ccMajor}${drv.info.ccMinor}, driver ${drv.info.driverVersion})`);
    return;
  }
  const p = JSON.parse(readFileSync(join(fixture.path, 'golden.json'), 'utf8')).prompts[0];
  const tokens = { prompt: p.input_ids as number[], decode: (p.greedy_ids as number[]).slice(0, 12) };
  const was = drv.pdl;
  try {
    drv.pdl = true;
    const on = run(fixture.path, tokens);
    drv.pdl = false;
    const off = run(fixture.path, tokens);
    assert.equal(on.length, off.length);
    for (const [i, row] of on.entries()) {
      const a = new Uint32Array(row.buffer, row.byteOffset, row.length);
      const b = new Uint32Array(off[i]!.buffer, off[i]!.byteOffset, off[i]!.length);
      assert.deepEqual(a, b, `step ${i} logits differ`);
    }
  } finally {
    drv.pdl = was;
  }
});
