/**
 * A LoRA adapter's merge at load (W + scale B A, summed in float64): one Llama-3-8B decoder layer's seven linears
 * (bf16 weights, random factors) merged on one thread and on the worker threads, and what the whole 32-layer model
 * takes at that rate. The merge runs on the host before any upload, so this is every backend's load cost of --lora.
 * Run: node --import tsx bench/lora-merge.ts [--rank 16] [--threads 8]   (prints a table, appends it to bench/RESULTS.md)
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultThreads, threadedLoraMerge } from '../src/backend/cpu/threads.ts';
import { appendBenchResult } from '../src/cli/bench/results.ts';
import { mergeLora } from '../src/loader/lora-adapter.ts';
import { bf16Bits } from '../src/primitives/float-bits.ts';
import { projectRoot } from '../test/helpers/fixtures.ts';

const { values } = parseArgs({ options: { rank: { type: 'string', default: '16' }, threads: { type: 'string' } } });
const rank = Number(values.rank);
const threads = values.threads ? Number(values.threads) : defaultThreads();
const LAYERS = 32;
// Llama-3-8B: q, k, v, o, gate, up, down as [out, in].
const SHAPES: [string, number, number][] = [
  ['q_proj', 4096, 4096],
  ['k_proj', 1024, 4096],
  ['v_proj', 1024, 4096],
  ['o_proj', 4096, 4096],
  ['gate_proj', 14336, 4096],
  ['up_proj', 14336, 4096],
  ['down_proj', 4096, 14336],
];

const random = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
const f32 = (shape: number[]) => ({
  name: 'x',
  shape,
  dtype: 'f32' as const,
  bytes: new Uint8Array(random(shape[0]! * shape[1]!).buffer),
});
const bf16 = (shape: number[]) => ({
  name: 'w',
  shape,
  dtype: 'bf16' as const,
  bytes: new Uint8Array(Uint16Array.from(random(shape[0]! * shape[1]!), bf16Bits).buffer),
});

/** Seconds to merge one layer's linears with `n` threads (the pool started before the clock). */
function layerSeconds(n: number): number {
  let total = 0;
  for (const [, out, inp] of SHAPES) {
    const base = bf16([out, inp]);
    const pair = { a: f32([rank, inp]), b: f32([out, rank]), scale: 2 };
    const t0 = performance.now();
    mergeLora(base, pair, threadedLoraMerge(n));
    total += performance.now() - t0;
  }
  return total / 1000;
}

mergeLora(bf16([256, 1024]), { a: f32([rank, 1024]), b: f32([256, rank]), scale: 1 }, threadedLoraMerge(threads));
const macs = SHAPES.reduce((s, [, out, inp]) => s + out * inp * rank, 0);
const rows: string[][] = [];
for (const n of [...new Set([1, threads])]) {
  const s = layerSeconds(n);
  rows.push([String(n), s.toFixed(2), (macs / s / 1e9).toFixed(2), (s * LAYERS).toFixed(0)]);
}
const header = ['threads', 'one layer s', 'GMAC/s', `whole model (${LAYERS} layers) s`];
console.log(header.join(' | '));
for (const r of rows) console.log(r.join(' | '));
appendBenchResult(
  join(projectRoot, 'bench', 'RESULTS.md'),
  {
    name: 'LoRA merge',
    deviceName: 'CPU',
    command: `node --import tsx bench/lora-merge.ts --rank ${rank} --threads ${threads}`,
    about: `Llama-3-8B's seven decoder linears in bf16, rank ${rank} on every one, merged as --lora merges them`,
  },
  header,
  rows,
);
