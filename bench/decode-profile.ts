/**
 * Where a batch-1 decode step's time goes on the GPU: every kernel of one eager decode step timed alone with events
 * (summed per kernel and grid) and the replayed graph of the same step. The decode GEMV's read rate per weight shape
 * and configuration is bench/gemv-sweep.ts's job. With a quantization (q4_k_m, q8_0, ...), the matrices are random
 * blocks of its mix and the quantized GEMV's kernels show per type. Run on the device:
 *   node --import tsx bench/decode-profile.ts [model-config-dir] [quantization]
 */

import { CudaBackend } from '../src/backend/cuda/backend.ts';
import type { Handle } from '../src/backend/cuda/driver.ts';
import { streamMillis } from '../src/backend/cuda/stream-event.ts';
import { settingsFromEnv } from '../src/cli/settings.ts';
import { loadDummyModel } from '../src/models/dummy.ts';
import { parseQuantization } from '../src/primitives/quant/mix.ts';
import { buildStepBatch, type ScheduledChunk } from '../src/runner/step-batch.ts';
import { deviceWeights } from '../src/runner/weight-bytes.ts';

const dir = process.argv[2] ?? 'bench/configs/llama3-8b';
const quantization = process.argv[3] ? parseQuantization(process.argv[3], 'quantization') : undefined;
const BLOCK = 16;
const backend = new CudaBackend({
  ...settingsFromEnv().cuda,
  dtype: 'bf16',
  weightBytes: deviceWeights(dir, { dtype: 'bf16', dummy: true, quantization }).bytes,
});
const model = loadDummyModel(dir, backend, { quantization });
const kv = backend.allocKvCache({ ...model.kvShape, numBlocks: 64, blockSize: BLOCK });
const drv = backend.ctx.drv;
const prompt = Array.from({ length: 128 }, (_, i) => (i * 7919) % model.config.vocabSize);
const blocks = Array.from({ length: 32 }, (_, i) => i);
backend.forwardStep(
  buildStepBatch([{ tokenIds: prompt, startPos: 0, blockTable: blocks, logits: 'last' }], BLOCK),
  (s) => model.forward(s, kv),
);
const decode = (pos: number): ScheduledChunk => ({ tokenIds: [1], startPos: pos, blockTable: blocks, logits: 'last' });

// The replayed graph (captured on first use), averaged over 50 replays.
let pos = 128;
for (let i = 0; i < 4; i++) backend.forwardStep(buildStepBatch([decode(pos++)], BLOCK), (s) => model.forward(s, kv));
const replays = 50;
const graphMs =
  streamMillis(drv, () => {
    for (let i = 0; i < replays; i++)
      backend.forwardStep(buildStepBatch([decode(pos)], BLOCK), (s) => model.forward(s, kv));
  }) / replays;

// One eager step with each launch timed alone (the stream idles between launches, so this is kernel time only).
const perKernel = new Map<string, { count: number; ms: number }>();
const launch = drv.launch.bind(drv);
drv.launch = (fn: Handle, name, grid, block, smem, kinds, args, stream) => {
  const ms = streamMillis(drv, () => launch(fn, name, grid, block, smem, kinds, args, stream));
  const key = `${name.replace(/\(.*\)/, '')} [${grid.join('x')}]`;
  const e = perKernel.get(key) ?? { count: 0, ms: 0 };
  e.count++;
  e.ms += ms;
  perKernel.set(key, e);
};
for (let rep = 0; rep < 2; rep++) {
  perKernel.clear();
  model.forward(backend.beginStep(buildStepBatch([decode(pos)], BLOCK)), kv);
  drv.sync();
}
drv.launch = launch;
const rows = [...perKernel.entries()].sort((a, b) => b[1].ms - a[1].ms);
const kernelMs = rows.reduce((a, [, e]) => a + e.ms, 0);
const launches = rows.reduce((a, [, e]) => a + e.count, 0);
console.log(`\n| kernel [grid] | launches | total us | us each | share |\n|---|---|---|---|---|`);
for (const [k, e] of rows)
  console.log(
    `| ${k} | ${e.count} | ${(e.ms * 1000).toFixed(0)} | ${((e.ms * 1000) / e.count).toFixed(1)} | ${((100 * e.ms) / kernelMs).toFixed(1)} % |`,
  );
console.log(
  `\nbatch-1 decode step: graph replay ${graphMs.toFixed(3)} ms; ${launches} kernels timed alone sum to ${kernelMs.toFixed(3)} ms`,
);
