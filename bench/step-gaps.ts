/**
 * Where a batch-1 decode token's time goes between the graph and the engine: the replayed graph alone (queued back to
 * back), the device sampler alone (upload, launch, download of one id), and the two as a step loop that waits for
 * each id before the next step, as the engine does, at temperature 0 (argmax) and 1 (Gumbel over the vocabulary).
 * `pagoda bench latency` on the same shape adds the engine's own host work. `--seqs N` times N sequences (at context
 * 128, the cache as allocated) and N sampled rows instead. Run on the device:
 *   node --import tsx bench/step-gaps.ts [model-config-dir] [quantization] [--seqs N]
 */

import { parseArgs } from 'node:util';
import { streamMillis } from '../src/backend/cuda/stream-event.ts';
import { plainRow } from '../test/helpers/sampling-rows.ts';
import { dummyDecode, PROMPT_LEN } from './dummy-decode.ts';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { seqs: { type: 'string', default: '1' } },
});
const [dir, quantization] = [positionals[0] ?? 'bench/configs/llama3-8b', positionals[1]];
const seqs = Number(opts.seqs);
const { backend, drv, run, decodeChunks } = dummyDecode(dir, quantization, { seqs });
const decode = () => run(decodeChunks(PROMPT_LEN));
const rows = (temperature: number, step: number) =>
  Array.from({ length: seqs }, (_, s) => plainRow(temperature, 7 + s, step));
for (let i = 0; i < 4; i++) backend.sampleTokens(decode(), rows(1, i));
drv.sync();

const N = 100;
const wall = (body: (i: number) => void) => {
  drv.sync();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) body(i);
  drv.sync();
  return (performance.now() - t0) / N;
};
const graph =
  streamMillis(drv, () => {
    for (let i = 0; i < N; i++) decode();
  }) / N;
const logits = decode();
const samplerAlone = (t: number) =>
  wall((i) => {
    backend.sampleTokens(logits, rows(t, i));
  });
const loop = (t: number) =>
  wall((i) => {
    backend.sampleTokens(decode(), rows(t, i));
  });
const table: [string, number][] = [
  ['graph replays queued back to back', graph],
  ['sampler alone, temperature 0 (upload, launch, download)', samplerAlone(0)],
  ['sampler alone, temperature 1', samplerAlone(1)],
  ['step loop (replay, sample, wait for the id), temperature 0', loop(0)],
  ['step loop, temperature 1', loop(1)],
];
console.log(`\n${dir}${quantization ? ` ${quantization}` : ''}, batch ${seqs}\n\n| what | ms |\n|---|---|`);
for (const [what, ms] of table) console.log(`| ${what} | ${ms.toFixed(3)} |`);
backend.release();
