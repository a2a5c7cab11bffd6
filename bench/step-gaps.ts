/**
 * Where a batch-1 decode token's time goes between the graph and the engine: the replayed graph alone (queued back to
 * back), the device sampler alone (upload, launch, download of one id), and the two as a step loop that waits for
 * each id before the next step, as the engine does, at temperature 0 (argmax) and 1 (Gumbel over the vocabulary).
 * `pagoda bench latency` on the same shape adds the engine's own host work. Run on the device:
 *   node --import tsx bench/step-gaps.ts [model-config-dir] [quantization]
 */

import { streamMillis } from '../src/backend/cuda/stream-event.ts';
import { dummyDecode, PROMPT_LEN, plainRow } from './dummy-decode.ts';

const [dir, quantization] = [process.argv[2] ?? 'bench/configs/llama3-8b', process.argv[3]];
const { backend, drv, run, decodeChunk } = dummyDecode(dir, quantization);
const decode = () => run(decodeChunk(PROMPT_LEN));
const row = (temperature: number, step: number) => plainRow(temperature, 7, step);
for (let i = 0; i < 4; i++) backend.sampleTokens(decode(), [row(1, i)]);
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
    backend.sampleTokens(logits, [row(t, i)]);
  });
const loop = (t: number) =>
  wall((i) => {
    backend.sampleTokens(decode(), [row(t, i)]);
  });
const rows: [string, number][] = [
  ['graph replays queued back to back', graph],
  ['sampler alone, temperature 0 (upload, launch, download)', samplerAlone(0)],
  ['sampler alone, temperature 1', samplerAlone(1)],
  ['step loop (replay, sample, wait for the id), temperature 0', loop(0)],
  ['step loop, temperature 1', loop(1)],
];
console.log(`\n${dir}${quantization ? ` ${process.argv[3]}` : ''}, batch 1\n\n| what | ms |\n|---|---|`);
for (const [what, ms] of rows) console.log(`| ${what} | ${ms.toFixed(3)} |`);
backend.release();
