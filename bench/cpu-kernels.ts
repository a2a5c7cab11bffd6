/**
 * CPU kernel throughput: linear (matmul) and paged attention (over each KV cache type) in isolation, single thread.
 * Usage: npx tsx bench/cpu-kernels.ts   Prints a table and appends it to bench/RESULTS.md.
 */
import { appendFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pagedAttention } from '../src/backend/cpu/attention.ts';
import { allocPlane, writeRows } from '../src/backend/cpu/kv-store.ts';
import { linearF32 } from '../src/backend/cpu/matmul.ts';
import { linearQuantized } from '../src/backend/cpu/quant-matmul.ts';
import { stackQuantized } from '../src/backend/cpu/quant-tensor.ts';
import { simdArena } from '../src/backend/cpu/wasm/kernels.ts';
import type { QuantType } from '../src/primitives/ggml-types.ts';
import { quantize } from '../src/primitives/quant/index.ts';
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

// Quantized weights of a 1-2B model's width: decode (one token) and a 32-token prefill, the activations' 8-bit
// quantization included. Each twice, rounds interleaved: the JavaScript kernels (blocks in ordinary memory: dot
// products for one token, dequantized rows and the f32 kernel for 32, but for Q4_1/Q5_1) and the SIMD kernels
// (blocks in WebAssembly memory).
const arena = simdArena();
for (const type of ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'] as QuantType[]) {
  const n = 2048;
  const values = Float32Array.from({ length: n * n }, (_, i) => Math.sin(i));
  const host = { name: 'w', shape: [n, n], dtype: type, bytes: quantize(type, values) };
  const js = stackQuantized([host], false);
  const simd = stackQuantized([host], false, arena);
  for (const T of [1, 32]) {
    const x = Float32Array.from({ length: T * n }, (_, i) => Math.cos(i));
    const variants = arena ? { js, simd } : { js };
    const best = { js: Number.POSITIVE_INFINITY, simd: Number.POSITIVE_INFINITY };
    for (let round = 0; round < 3; round++) {
      for (const [k, w] of Object.entries(variants) as ['js' | 'simd', typeof js][]) {
        best[k] = Math.min(
          best[k],
          time(() => linearQuantized(x, w, T, n, null, null), T === 1 ? 40 : 4),
        );
      }
    }
    for (const k of Object.keys(variants) as ('js' | 'simd')[]) {
      record(`linear ${type} ${k}`, `T${T} ${n}->${n}`, best[k], 2 * T * n * n);
    }
  }
}

// GQA 6/2, head_dim 64, block size 16, scattered block table, with the cache in each storage type (the quantized
// ones are dequantized where attention reads them: the f32 row is the baseline).
const [Hq, Hk, D, bs, numBlocks] = [6, 2, 64, 16, 80];
const row = Hk * D;
const slotMapping = Int32Array.from({ length: numBlocks * bs }, (_, i) => i);
const spec = { numHeads: Hq, numKvHeads: Hk, headDim: D, scale: 1 / Math.sqrt(D), slidingWindow: 0 };
const table = Array.from({ length: numBlocks }, (_, i) => (i * 7) % numBlocks);
for (const type of ['f32', 'fp8', 'q8_0', 'q4_0'] as const) {
  const plane = (f: (i: number) => number) => {
    const p = allocPlane(type, numBlocks * bs, row, false);
    writeRows(
      p,
      Float32Array.from({ length: numBlocks * bs * row }, (_, i) => f(i)),
      slotMapping,
      row,
    );
    return p;
  };
  const cache = { k: plane(Math.sin), v: plane(Math.cos), numKvHeads: Hk, headDim: D };
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
    record(`attention, ${type} cache`, `GQA ${Hq}/${Hk} hd${D} ctx${ctx} T${T}`, ms, 4 * Hq * D * pairs);
  }
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
