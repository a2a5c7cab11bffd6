/**
 * CPU kernel throughput: linear (matmul) and paged attention in isolation, single thread.
 * Usage: npx tsx bench/cpu-kernels.ts   Prints a table and appends it to bench/RESULTS.md.
 */
import { appendFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pagedAttention } from '../src/backend/cpu/attention.ts';
import { linearF32 } from '../src/backend/cpu/matmul.ts';
import { buildStepBatch } from '../src/runner/step-batch.ts';

/** Best time of `repeats` runs after a warm-up, in ms. */
function time(fn: () => void, repeats: number): number {
  for (let r = 0; r < Math.max(2, repeats / 4); r++) fn();
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

const rows: string[][] = [];
const record = (kernel: string, shape: string, ms: number, flops: number) =>
  rows.push([kernel, shape, ms.toFixed(3), (flops / ms / 1e6).toFixed(2)]);

// The demo model's projections: hidden 384, MLP 1280.
for (const [T, n, m] of [
  [1, 384, 1280],
  [1, 1280, 384],
  [8, 384, 1280],
  [64, 384, 1280],
] as const) {
  const w = Float32Array.from({ length: n * m }, (_, i) => Math.sin(i));
  const x = Float32Array.from({ length: T * n }, (_, i) => Math.cos(i));
  const out = new Float32Array(T * m);
  record(
    'linear',
    `T${T} ${n}->${m}`,
    time(() => linearF32(x, w, null, out, T, n, m), 50),
    2 * T * n * m,
  );
}

// GQA 6/2, head_dim 64, block size 16, scattered block table.
const [Hq, Hk, D, bs, numBlocks] = [6, 2, 64, 16, 80];
const cache = {
  k: Float32Array.from({ length: numBlocks * bs * Hk * D }, (_, i) => Math.sin(i)),
  v: Float32Array.from({ length: numBlocks * bs * Hk * D }, (_, i) => Math.cos(i)),
  numKvHeads: Hk,
  headDim: D,
};
const spec = { numHeads: Hq, numKvHeads: Hk, headDim: D, scale: 1 / Math.sqrt(D), slidingWindow: 0 };
const table = Array.from({ length: numBlocks }, (_, i) => (i * 7) % numBlocks);
for (const [ctx, T] of [
  [256, 1],
  [1024, 1],
  [512, 512],
] as const) {
  const chunk = { tokenIds: new Array(T).fill(0), startPos: ctx - T, blockTable: table, logits: 'last' as const };
  const batch = buildStepBatch([chunk], bs);
  const q = Float32Array.from({ length: T * Hq * D }, (_, i) => Math.sin(i * 0.3));
  const out = new Float32Array(T * Hq * D);
  const pairs = T === 1 ? ctx : (T * (T + 1)) / 2;
  const ms = time(() => pagedAttention(q, cache, spec, batch, out), T === 1 ? 100 : 3);
  record('attention', `GQA ${Hq}/${Hk} hd${D} ctx${ctx} T${T}`, ms, 4 * Hq * D * pairs);
}

const head = ['kernel', 'shape', 'ms', 'GFLOP/s'];
const widths = head.map((h, c) => Math.max(h.length, 3, ...rows.map((r) => r[c]!.length)));
const line = (cells: string[]) => `| ${cells.map((x, c) => x.padEnd(widths[c]!)).join(' | ')} |`;
const lines = [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
console.log(lines.join('\n'));
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const section = [
  `## CPU kernels — ${new Date().toISOString()}`,
  '',
  `Machine: ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} threads, load average ${loadavg()[0]!.toFixed(1)}), Node ${process.version}. Command: \`npx tsx bench/cpu-kernels.ts\` (one thread, best of several runs).`,
  '',
  ...lines,
  '',
].join('\n');
appendFileSync(join(root, 'bench', 'RESULTS.md'), `\n${section}`);
