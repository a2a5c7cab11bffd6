/**
 * Where a batch-1 decode step's time goes on the GPU: every kernel of one eager decode step timed alone with events
 * (summed per kernel and grid), the replayed graph of the same step, and the decode GEMV's read rate per Llama-3-8B
 * weight shape against cuBLASLt and a device-to-device copy of the same bytes. Run on the device:
 *   node --import tsx bench/decode-profile.ts [model-config-dir]
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CudaBackend } from '../src/backend/cuda/backend.ts';
import type { DevPtr, Handle } from '../src/backend/cuda/driver.ts';
import { kernelsDir } from '../src/backend/cuda/modules.ts';
import { weightBytes } from '../src/backend/cuda/weight-bytes.ts';
import { loadDummyModel } from '../src/models/dummy.ts';
import { buildStepBatch, type ScheduledChunk } from '../src/runner/step-batch.ts';

const dir = process.argv[2] ?? 'bench/configs/llama3-8b';
const BLOCK = 16;
const backend = new CudaBackend({ dtype: 'bf16', weightBytes: weightBytes(dir, 'bf16', true) });
const model = loadDummyModel(dir, backend);
const kv = backend.allocKvCache({ ...model.kvShape, numBlocks: 64, blockSize: BLOCK });
const drv = backend.drv;
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
  drv.time(() => {
    for (let i = 0; i < replays; i++)
      backend.forwardStep(buildStepBatch([decode(pos)], BLOCK), (s) => model.forward(s, kv));
  }) / replays;

// One eager step with each launch timed alone (the stream idles between launches, so this is kernel time only).
const perKernel = new Map<string, { count: number; ms: number }>();
const launch = drv.launch.bind(drv);
drv.launch = (fn: Handle, name, grid, block, smem, kinds, args) => {
  const ms = drv.time(() => launch(fn, name, grid, block, smem, kinds, args));
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

// GEMV read rate per weight shape. Weights rotate over >= 256 MB so each launch reads from HBM, not L2.
const shapes: [string, number, number][] = [
  ['q / o (4096 x 4096)', 4096, 4096],
  ['k / v (1024 x 4096)', 1024, 4096],
  ['gate / up (14336 x 4096)', 14336, 4096],
  ['down (4096 x 14336)', 4096, 14336],
  ['lm_head (128256 x 4096)', 128256, 4096],
];
const oldGemv = existsSync(join(kernelsDir, 'gemv_old.cu'))
  ? backend.kernel('gemv_old', 'gemv', 'pppiii', { TMAX: 1 })
  : null;
console.log(
  `\n| weights | MB | GEMV us | GEMV GB/s | previous GEMV GB/s | cuBLASLt GB/s | D2D copy GB/s (read + write) |\n|---|---|---|---|---|---|---|`,
);
for (const [label, m, n] of shapes) {
  const bytes = m * n * 2;
  const copies = Math.max(2, Math.ceil((256 << 20) / bytes));
  const ws: DevPtr[] = Array.from({ length: copies }, () => drv.alloc(bytes));
  for (const w of ws) drv.fill32(w, 0x3c003c00, bytes / 4);
  const x = drv.alloc(n * 2);
  const y = drv.alloc(m * 2);
  drv.fill32(x, 0x3c003c00, n / 2);
  const reps = 3 * copies;
  const rate = (body: (w: DevPtr, i: number) => void) => {
    for (let i = 0; i < copies; i++) body(ws[i]!, i);
    const ms = drv.time(() => {
      for (let i = 0; i < reps; i++) body(ws[i % copies]!, i);
    });
    return { us: (ms * 1000) / reps, gbs: (bytes * reps) / (ms * 1e6) };
  };
  const g = rate((w) => backend.gemvInto(y, x, w, 1, m, n));
  const o = oldGemv ? rate((w) => oldGemv.launch([Math.ceil(m / 8)], [256], [y, x, w, 1, m, n])).gbs.toFixed(0) : '-';
  const lt = rate((w) => backend.lt.matmul(y, x, w, 1, m, n, 'bf16', 'bf16'));
  const cp = rate((w, i) => drv.copy(ws[(i + 1) % copies]!, w, bytes));
  console.log(
    `| ${label} | ${(bytes / 1e6).toFixed(1)} | ${g.us.toFixed(1)} | ${g.gbs.toFixed(0)} | ${o} | ${lt.gbs.toFixed(0)} | ${(2 * cp.gbs).toFixed(0)} |`,
  );
  for (const w of [...ws, x, y]) drv.free(w);
}
