import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { loadEngine } from '../../src/engine/load.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip } from '../helpers/gpu.ts';

const fixture = modelFixture('tiny-llama');

test('an engine shut down frees its CUDA memory: a model loaded, run and unloaded three times leaves the free memory as it was', {
  skip: gpuSkip() || fixture.skip,
}, async () => {
  // A KV cache of 30% of the card each time, given as bytes (sized from the utilization, a tiny model's cache stops at
  // what max-num-seqs x max-model-len can use): without the release, the fourth load would not fit.
  const kvCacheMemory = Math.floor(0.3 * CudaDriver.open().info.totalBytes);
  const load = () =>
    loadEngine(fixture.path, { device: 'cuda', dtype: 'bfloat16', kvCacheMemory, log: () => {} }).engine;
  // A first load and unload compiles the kernels into the cache and sets up the process's CUDA context.
  const first = load();
  for await (const _ of first.generate({ prompt: [1, 5, 9], params: { maxTokens: 4 } }));
  await first.shutdown();
  const drv = CudaDriver.open();
  const free0 = drv.memInfo().free;
  const taken: number[] = [];
  for (let i = 0; i < 3; i++) {
    const engine = load();
    for await (const _ of engine.generate({ prompt: [1, 5, 9], params: { maxTokens: 4 } }));
    assert.ok(free0 - drv.memInfo().free > drv.info.totalBytes / 4, 'the loaded model holds its KV cache');
    await engine.shutdown();
    taken.push(free0 - drv.memInfo().free);
  }
  const mib = taken.map((b) => (b / 2 ** 20).toFixed(1));
  assert.ok(taken[0]! < 64 * 2 ** 20, `after the first unload ${mib[0]} MiB still taken`);
  assert.ok(taken[2]! - taken[0]! < 8 * 2 ** 20, `taken after each unload: ${mib.join(', ')} MiB (must not grow)`);
});
