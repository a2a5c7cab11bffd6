/**
 * cuBLASLt's heuristic: its first pick against the next algorithms it lists, timed on each Llama-3-8B GEMM of a
 * decode step (q/k/v packed, o, gate/up packed, down) at the batch sizes where the offline run spends its time, with
 * the weights rotated over >= 256 MB so they come from HBM as in a real step. Each algorithm's output is checked
 * against the first pick's first. Prints every timing, then per shape the first pick, the best and what a step of 32
 * layers would save with the best: whether choosing among the heuristic's algorithms (per card and shape, as the
 * GEMV table does) is worth building. Run on the device:
 *   node --import tsx bench/gemm-algos.ts [--rows 64,128,192,256] [--algos 8] [--types bf16,e4m3] [--budget-s 60]
 */

import { CudaBackend } from '../src/backend/cuda/backend.ts';
import type { GemmType } from '../src/backend/cuda/cublaslt.ts';
import type { DevPtr } from '../src/backend/cuda/driver.ts';
import { fillUniform } from '../src/backend/cuda/elementwise.ts';
import { quantizeRows } from '../src/backend/cuda/fp8.ts';
import { rotatedLaunchMicros } from '../src/backend/cuda/stream-event.ts';
import { CudaTensor } from '../src/backend/cuda/tensor.ts';
import { settingsFromEnv } from '../src/cli/settings.ts';
import { relL2 } from '../test/helpers/gpu.ts';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const rows = (opt('rows') ?? '64,128,192,256').split(',').map(Number);
const algos = Number(opt('algos') ?? 8);
const types = (opt('types') ?? 'bf16,e4m3').split(',') as GemmType[];
const deadline = performance.now() + Number(opt('budget-s') ?? 60) * 1000;
const LAYERS = 32;

const backend = new CudaBackend({ ...settingsFromEnv().cuda, dtype: 'bf16', graphs: false });
const drv = backend.ctx.drv;
const lt = backend.linears.lt;

const shapes = [
  { label: 'q/k/v 6144 x 4096', out: 6144, k: 4096 },
  { label: 'o 4096 x 4096', out: 4096, k: 4096 },
  { label: 'gate/up 28672 x 4096', out: 28672, k: 4096 },
  { label: 'down 4096 x 14336', out: 4096, k: 14336 },
];

let seed = 1;
/** A `[rows, cols]` operand of uniform values: bf16, or its rows quantized to e4m3 codes. */
function random(type: GemmType, rows: number, cols: number, scale: number): DevPtr {
  const wide = drv.alloc(rows * cols * 2);
  fillUniform(backend.ctx, wide, rows * cols, seed++, scale);
  if (type !== 'e4m3') return wide;
  const codes = drv.alloc(rows * cols);
  const scales = drv.alloc(rows * 4);
  quantizeRows(backend.ctx, codes, scales, wide, rows, cols);
  drv.sync();
  drv.free(wide);
  drv.free(scales);
  return codes;
}
const maxT = Math.max(...rows);
const maxK = Math.max(...shapes.map((s) => s.k));
const maxOut = Math.max(...shapes.map((s) => s.out));
const xs = new Map(types.map((type) => [type, random(type, maxT, maxK, 1)]));
const y = drv.alloc(maxT * maxOut * 2);
const host = (n: number) => backend.toHost(new CudaTensor([n], 'bf16', y));

console.log('| type | rows | weights | algorithm | us | TFLOP/s | rel. L2 vs #0 |\n|---|---|---|---|---|---|---|');
const summary: string[] = [];
const saved = new Map<string, number>();
for (const type of types) {
  const elemBytes = type === 'e4m3' ? 1 : 2;
  for (const s of shapes) {
    const bytes = s.out * s.k * elemBytes;
    const ws = Array.from({ length: Math.max(2, Math.ceil((256 << 20) / bytes)) }, () =>
      random(type, s.out, s.k, 1 / Math.sqrt(s.k)),
    );
    const x = xs.get(type)!;
    for (const T of rows) {
      if (performance.now() > deadline) break;
      const flop = 2 * T * s.out * s.k;
      const times: number[] = [];
      let want: Float32Array | null = null;
      for (let choice = 0; choice < algos; choice++) {
        const run = (w: DevPtr) => lt.matmul(y, x, w, T, s.out, s.k, type, 'bf16', s.out, choice);
        try {
          run(ws[0]!);
        } catch {
          break; // the heuristic lists fewer algorithms
        }
        const got = host(T * s.out);
        want ??= got;
        const err = relL2(got, want);
        const us = rotatedLaunchMicros(drv, ws.length, (i) => run(ws[i]!));
        console.log(
          `| ${type} | ${T} | ${s.label} | #${choice} | ${us.toFixed(1)} | ${(flop / us / 1e6).toFixed(0)} | ${err.toExponential(1)} |`,
        );
        times.push(err <= 1e-2 ? us : Number.POSITIVE_INFINITY);
      }
      if (!times.length) continue;
      const best = times.indexOf(Math.min(...times));
      const gain = LAYERS * (times[0]! - times[best]!);
      saved.set(`${type} ${T}`, (saved.get(`${type} ${T}`) ?? 0) + gain);
      summary.push(
        `| ${type} | ${T} | ${s.label} | ${times[0]!.toFixed(1)} | #${best} ${times[best]!.toFixed(1)} | ${(times[0]! / times[best]!).toFixed(3)} | ${times.length} |`,
      );
    }
    for (const w of ws) drv.free(w);
  }
}
console.log(
  '\n| type | rows | weights | first pick us | best us | first / best | algorithms |\n|---|---|---|---|---|---|---|',
);
for (const line of summary) console.log(line);
console.log('\n| type | rows | a step of 32 layers saves, ms |\n|---|---|---|');
for (const [k, us] of saved) console.log(`| ${k.replace(' ', ' | ')} | ${(us / 1000).toFixed(3)} |`);
backend.release();
