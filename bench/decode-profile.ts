/**
 * Where a batch-1 decode step's time goes on the GPU: every kernel of one eager decode step timed alone with events
 * (summed per kernel and grid) and the replayed graph of the same step. The decode GEMV's read rate per weight shape
 * and configuration is bench/gemv-sweep.ts's job. With a quantization (q4_k_m, q8_0, ...), the matrices are random
 * blocks of its mix and the quantized GEMV's kernels show per type. Run on the device:
 *   node --import tsx bench/decode-profile.ts [model-config-dir] [quantization]
 */

import type { Handle } from '../src/backend/cuda/driver.ts';
import { streamMillis } from '../src/backend/cuda/stream-event.ts';
import { buildStepBatch } from '../src/runner/step-batch.ts';
import { dummyDecode, PROMPT_LEN } from './dummy-decode.ts';

const {
  backend,
  model,
  kv,
  drv,
  blockSize: BLOCK,
  run,
  decodeChunk: decode,
} = dummyDecode(process.argv[2], process.argv[3]);

// The replayed graph (captured on first use), averaged over 50 replays.
let pos = PROMPT_LEN;
for (let i = 0; i < 4; i++) run(decode(pos++));
const replays = 50;
const graphMs =
  streamMillis(drv, () => {
    for (let i = 0; i < replays; i++) run(decode(pos));
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
