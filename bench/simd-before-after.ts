/**
 * The CPU backend's SIMD quantized linears on one thread, an earlier commit's WebAssembly binary against the working
 * tree's, interleaved in one process: between separate runs this machine drifts more than a kernel change moves.
 * Times `wasmRows` (packing the activations and the kernels; the activations quantized once beforehand), best call.
 * Usage: npx tsx bench/simd-before-after.ts COMMIT [TYPES] [TOKENS] [MS_A_CASE]
 *   e.g. npx tsx bench/simd-before-after.ts 9217bbe q8_0,q5_k 1,4,16,32 2000
 * Prints a table and appends it to bench/RESULTS.md.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quantInput } from '../src/backend/cpu/quant-matmul.ts';
import { stackQuantized } from '../src/backend/cpu/quant-tensor.ts';
import { rowRange } from '../src/backend/cpu/row-source.ts';
import { SIMD_BUILDS, SIMD_MODULE, simdArena, wasmRows } from '../src/backend/cpu/wasm/kernels.ts';
import type { QuantType } from '../src/primitives/ggml-types.ts';
import { quantize } from '../src/primitives/quant/index.ts';
import { markdownTable } from '../src/util/markdown.ts';

const [commit, types = 'q8_0,q4_0,q4_k,q5_k,q6_k', tokens = '1,4,16,32', msACase = '2000'] = process.argv.slice(2);
if (!commit) throw new Error('usage: npx tsx bench/simd-before-after.ts COMMIT [TYPES] [TOKENS] [MS_A_CASE]');
const arena = simdArena();
if (!SIMD_MODULE || !arena) throw new Error('this runtime has no WebAssembly SIMD');
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const binary = SIMD_MODULE === SIMD_BUILDS.relaxed ? 'quant-dot-relaxed.wasm' : 'quant-dot.wasm';
const before = new WebAssembly.Module(
  new Uint8Array(execFileSync('git', ['show', `${commit}:src/backend/cpu/wasm/${binary}`], { cwd: root })),
);

const n = 2048;
const rows: string[][] = [];
for (const type of types.split(',') as QuantType[]) {
  const values = Float32Array.from({ length: n * n }, (_, i) => Math.sin(i));
  const host = { name: 'w', shape: [n, n], dtype: type, bytes: quantize(type, values) };
  const p = stackQuantized([host], false, arena).parts[0]!;
  for (const T of tokens.split(',').map(Number)) {
    const input = quantInput(
      p,
      Float32Array.from({ length: T * n }, (_, i) => Math.cos(i)),
      T,
      n,
    );
    const out = new Float32Array(T * n);
    const best = new Map<WebAssembly.Module, number>([
      [before, Number.POSITIVE_INFINITY],
      [SIMD_MODULE, Number.POSITIVE_INFINITY],
    ]);
    // Four rounds of both builds, the case's time in all (each build at least three calls a round).
    for (let round = 0; round < 4; round++) {
      for (const module of best.keys()) {
        const until = performance.now() + Number(msACase) / 8;
        for (let call = 0; call < 3 || performance.now() < until; call++) {
          const t0 = performance.now();
          wasmRows(input, type, p.home!, p.rowBytes, out, T, n, n, 0, rowRange(0, n), 0, module);
          best.set(module, Math.min(best.get(module)!, performance.now() - t0));
        }
      }
    }
    const [was, now] = [best.get(before)!, best.get(SIMD_MODULE)!];
    rows.push([type, `T${T} ${n}->${n}`, was.toFixed(3), now.toFixed(3), `${(was / now).toFixed(2)}x`]);
  }
}

const table = markdownTable(['type', 'shape', `${commit} ms`, 'this tree ms', 'speedup'], rows);
console.log(table);
const build = SIMD_MODULE === SIMD_BUILDS.relaxed ? 'relaxed SIMD' : 'SIMD';
const section = [
  `## CPU SIMD kernels, ${commit} against this tree — ${new Date().toISOString()}`,
  '',
  `Machine: ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} threads, load average ${loadavg()[0]!.toFixed(1)}), Node ${process.version}, ${build} build. Command: \`npx tsx bench/simd-before-after.ts ${process.argv.slice(2).join(' ')}\` (one thread, interleaved, best call).`,
  '',
  table,
  '',
].join('\n');
appendFileSync(join(root, 'bench', 'RESULTS.md'), `\n${section}`);
