import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { loadEngine } from '../../src/engine/load.ts';
import type { ModelRunner } from '../../src/runner/model-runner.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip } from '../helpers/gpu.ts';

const fixture = modelFixture('tiny-llama');
const skip = gpuSkip() || fixture.skip;

async function generate(engine: Engine, prompt: number[], maxTokens: number): Promise<number[]> {
  const ids: number[] = [];
  for await (const out of engine.generate({ prompt, params: { temperature: 0, maxTokens, ignoreEos: true } })) {
    for (const d of out.outputs) ids.push(...d.tokenIds);
  }
  return ids;
}

/** An engine on an f32 checkpoint stored as bf16 (so weights convert on the device), prefill and decode at 1-3 rows. */
async function startOnce(kernelCache: string) {
  const lines: string[] = [];
  const loaded = await loadEngine(fixture.path, {
    device: 'cuda',
    dtype: 'bfloat16',
    maxNumSeqs: 4,
    cuda: { kernelCache },
    log: (l) => lines.push(l),
  });
  const backend = (loaded.engine.config.runner as ModelRunner).model.backend;
  assert.ok(backend instanceof CudaBackend);
  try {
    const runs = await Promise.all([
      generate(loaded.engine, [1, 5, 9, 13], 6),
      generate(loaded.engine, [1, 7], 4),
      generate(loaded.engine, [1, 2, 3], 5),
    ]);
    assert.deepEqual(
      runs.map((r) => r.length),
      [6, 4, 5],
    );
  } finally {
    await loaded.engine.shutdown();
  }
  console.log(
    `CUDA graphs: ${JSON.stringify(backend.graphs?.stats)} (capture is lazy: per batch-size bucket, first decode)`,
  );
  return { lines, unplanned: backend.ctx.mods.unplanned };
}

test('with an empty kernel cache the prefetch plan covers every kernel prefill and decode use; then all are cached', {
  skip,
}, async () => {
  const cache = mkdtempSync(join(tmpdir(), 'pagoda-kernels-'));
  const cold = await startOnce(cache);
  const line = cold.lines.find((l) => l.startsWith('start-up '));
  console.log(line);
  // Decode's kernels may still be compiling when the line is written (the first decode takes them).
  assert.match(
    line ?? '',
    /weights 0\.\d\d GB in [\d.]+ s \([\d.]+ GB\/s; .*kernels: \d+ prefetched, \d+ compiled on \d+ threads/,
  );
  assert.deepEqual(cold.unplanned, [], 'modules the plan missed (compiled on the critical path)');
  assert.ok(
    readdirSync(cache).some((f) => f.endsWith('.cubin')),
    'the workers filled the cache',
  );
  const warm = await startOnce(cache);
  const warmLine = warm.lines.find((l) => l.startsWith('start-up '));
  console.log(warmLine);
  assert.match(warmLine ?? '', /kernels: (\d+) prefetched, \1 cached, none compiled on first use/);
});
