/**
 * Where a decode step's time goes on the GPU: every kernel and cuBLASLt GEMM of one eager decode step timed alone
 * with events (summed per kernel and grid, per GEMM shape) and the replayed graph of the same step, for `--seqs`
 * sequences of `--context` tokens (default one of 128: the batch-1 token). `--sweep 160,192,224,256` also times the
 * step's graph captured at exactly each of those batch sizes (what a finer graph bucket would cost against padding to
 * the next one). The decode GEMV's read rate per weight shape and configuration is bench/gemv-sweep.ts's job. With
 * a quantization (q4_k_m, q8_0, fp8, ...), the matrices are random weights of that type. Run on the device:
 *   node --import tsx bench/decode-profile.ts [model-config-dir] [quantization] [--seqs N --context C --sweep LIST]
 *     [--kv-cache-type fp8|q8_0]
 */

import { parseArgs } from 'node:util';
import type { Handle } from '../src/backend/cuda/driver.ts';
import { streamMillis } from '../src/backend/cuda/stream-event.ts';
import { isKvQuant } from '../src/primitives/kv-cache-type.ts';
import { buildStepBatch } from '../src/runner/step-batch.ts';
import { dummyDecode, PROMPT_LEN } from './dummy-decode.ts';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seqs: { type: 'string', default: '1' },
    context: { type: 'string' },
    sweep: { type: 'string' },
    'kv-cache-type': { type: 'string' },
  },
});
const seqs = Number(opts.seqs);
const context = Number(opts.context ?? PROMPT_LEN);
const {
  backend,
  model,
  kv,
  drv,
  blockSize: BLOCK,
  run,
  decodeChunks,
} = dummyDecode(positionals[0], positionals[1], {
  seqs,
  context,
  kvQuant: isKvQuant(opts['kv-cache-type']) ? opts['kv-cache-type'] : undefined,
});

/** The mean of 50 replays of the step's graph at `n` sequences (captured on first use), after 4 warm-up steps. */
function graphMs(n: number): number {
  let pos = context;
  const chunks = (p: number) => decodeChunks(p).slice(0, n);
  for (let i = 0; i < 4; i++) run(chunks(pos++));
  const replays = 50;
  return (
    streamMillis(drv, () => {
      for (let i = 0; i < replays; i++) run(chunks(pos));
    }) / replays
  );
}
const replayMs = graphMs(seqs);

// One eager step with each launch timed alone (the stream idles between launches, so this is kernel time only).
const perKernel = new Map<string, { count: number; ms: number }>();
const timed = (key: string, body: () => void) => {
  const ms = streamMillis(drv, body);
  const e = perKernel.get(key) ?? { count: 0, ms: 0 };
  e.count++;
  e.ms += ms;
  perKernel.set(key, e);
};
const launch = drv.launch.bind(drv);
drv.launch = (fn: Handle, name, grid, block, smem, kinds, args) =>
  timed(`${name.replace(/\(.*\)/, '')} [${grid.join('x')}]`, () => launch(fn, name, grid, block, smem, kinds, args));
const lt = backend.linears.lt;
const matmul = lt.matmul.bind(lt);
lt.matmul = (y, x, w, t, out, inF, inType, outType, ldy) =>
  timed(`cuBLASLt ${inType} [${t} x ${inF}] x [${out} x ${inF}]^T`, () =>
    matmul(y, x, w, t, out, inF, inType, outType, ldy),
  );
// Timed only where cuBLASLt has the algorithm (false: nothing launched; the caller takes its own epilogue).
const matmulFp8Scaled = lt.matmulFp8Scaled.bind(lt);
lt.matmulFp8Scaled = (y, x, w, t, out, inF, outType, scales) => {
  if (!lt.hasFp8Scaled(t, out, inF, outType)) return false;
  timed(`cuBLASLt e4m3 scaled [${t} x ${inF}] x [${out} x ${inF}]^T`, () =>
    matmulFp8Scaled(y, x, w, t, out, inF, outType, scales),
  );
  return true;
};
for (let rep = 0; rep < 2; rep++) {
  perKernel.clear();
  model.forward(backend.beginStep(buildStepBatch(decodeChunks(context), BLOCK)), kv);
  drv.sync();
}
drv.launch = launch;
lt.matmul = matmul;
lt.matmulFp8Scaled = matmulFp8Scaled;
const rows = [...perKernel.entries()].sort((a, b) => b[1].ms - a[1].ms);
const kernelMs = rows.reduce((a, [, e]) => a + e.ms, 0);
const launches = rows.reduce((a, [, e]) => a + e.count, 0);
console.log(`\n| kernel [grid] | launches | total us | us each | share |\n|---|---|---|---|---|`);
for (const [k, e] of rows)
  console.log(
    `| ${k} | ${e.count} | ${(e.ms * 1000).toFixed(0)} | ${((e.ms * 1000) / e.count).toFixed(1)} | ${((100 * e.ms) / kernelMs).toFixed(1)} % |`,
  );
console.log(
  `\ndecode step, ${seqs} sequence(s) at context ${context}: graph replay ${replayMs.toFixed(3)} ms; ${launches} launches timed alone sum to ${kernelMs.toFixed(3)} ms`,
);

if (opts.sweep) {
  console.log(
    `\n| sequences (graph captured at exactly that size) | graph replay ms | ms per sequence |\n|---|---|---|`,
  );
  for (const n of opts.sweep.split(',').map(Number)) {
    if (n > seqs) throw new Error(`--sweep ${n}: at most --seqs (${seqs}) sequences`);
    backend.graphs?.setMaxBatch(n);
    const ms = graphMs(n);
    console.log(`| ${n} | ${ms.toFixed(3)} | ${(ms / n).toFixed(4)} |`);
  }
}
backend.release();
