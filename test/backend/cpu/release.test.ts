import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { HostTensor } from '../../../src/backend/backend.ts';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { CpuTensor } from '../../../src/backend/cpu/tensor.ts';
import { CpuThreads } from '../../../src/backend/cpu/threads.ts';
import { loadEngine } from '../../../src/engine/load.ts';
import { quantize } from '../../../src/primitives/quant/index.ts';
import { mulberry32 } from '../../../src/util/random.ts';

const THREADS = 3;

function values(n: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: n }, () => rnd() - 0.5);
}

/** A backend whose f32 and Q8_0 weights the workers have been told about, by one threaded linear each. */
function usedBackend(seed: number) {
  const b = new CpuBackend({ threads: THREADS });
  const f32: HostTensor = {
    name: 'f',
    shape: [512, 1024],
    dtype: 'f32',
    bytes: new Uint8Array(values(512 * 1024, seed).buffer),
  };
  const q8: HostTensor = {
    name: 'q',
    shape: [512, 1024],
    dtype: 'q8_0',
    bytes: quantize('q8_0', values(512 * 1024, seed + 1)),
  };
  const weights = [b.loadWeight(f32), b.loadWeight(q8)];
  const x = new CpuTensor([2, 1024], values(2 * 1024, seed + 2));
  const run = () => weights.map((w) => b.toHost(b.linear(x, w)));
  return { b, run, first: run() };
}

test("a released CPU backend's weights are dropped by the worker threads; another backend's are kept and still right", () => {
  const kept = usedBackend(1);
  const released = usedBackend(10);
  const pool = CpuThreads.running(THREADS)!;
  const before = pool.census();
  released.b.release();
  const after = pool.census();
  // The f32 weight, the Q8_0 blocks and the WebAssembly memory they lie in: three buffers fewer on every worker.
  assert.deepEqual(
    after,
    before.map((n) => n - 3),
  );
  assert.deepEqual(kept.run(), kept.first, 'the kept backend computes as before');
  assert.deepEqual(pool.census(), after, 'and its buffers were known already');
  released.b.release();
  assert.deepEqual(pool.census(), after, 'releasing twice changes nothing');
});

test('an engine shut down releases the backend it loaded (a server unloading a model frees its memory)', async () => {
  const loaded = loadEngine(undefined, { device: 'cpu', cpuThreads: THREADS, log: () => {} });
  for await (const _ of loaded.engine.generate({ prompt: 'Once upon a time', params: { maxTokens: 4 } }));
  const pool = CpuThreads.running(THREADS)!;
  const held = pool.census();
  await loaded.engine.shutdown();
  const after = pool.census();
  assert.ok(
    after.every((n, i) => n < held[i]!),
    `workers held ${held} buffers before the shutdown, ${after} after`,
  );
});

test('an engine given a backend leaves it alone at shutdown: the caller frees it', async () => {
  const backend = new CpuBackend({ threads: THREADS });
  const loaded = loadEngine(undefined, { device: 'cpu', backend, log: () => {} });
  for await (const _ of loaded.engine.generate({ prompt: 'Once upon a time', params: { maxTokens: 4 } }));
  const pool = CpuThreads.running(THREADS)!;
  const held = pool.census();
  await loaded.engine.shutdown();
  assert.deepEqual(pool.census(), held);
  backend.release();
  assert.ok(
    pool.census().every((n, i) => n < held[i]!),
    'released by its owner',
  );
});

test("a released backend's weight memory is freed, though idle workers held views of it", () => {
  // The test's own isolate collects on demand the way a worker does (worker.ts).
  setFlagsFromString('--expose-gc');
  const collect = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  const MB = 2 ** 20;
  const rss = () => process.memoryUsage().rss / MB;
  /** A backend holding a 256 MiB weight that the workers have computed with; only its release is returned. */
  const loaded = () => {
    const b = new CpuBackend({ threads: THREADS });
    const w = b.loadWeight({ name: 'big', shape: [1024, MB / 16], dtype: 'f32', bytes: new Uint8Array(256 * MB) });
    b.linear(new CpuTensor([1, MB / 16], values(MB / 16, 21)), w);
    return () => b.release();
  };
  const release = loaded();
  collect();
  const before = rss();
  release();
  // A second collection finishes the first one's sweep of array buffers, which frees their memory.
  collect();
  collect();
  assert.ok(rss() < before - 200, `${before.toFixed(0)} MiB resident before the release, ${rss().toFixed(0)} after`);
});
