/**
 * The two FP8 decode GEMVs (PAGODA_FP8_GEMV) on the Llama-3-8B decoder shapes, bf16 activations, against the bf16
 * weight of the same shape through the backend's own linear (the 16-bit GEMV), all in one run: the tensor-core one
 * (kernels/fp8_gemv.cu, mma.sync e4m3) as the backend runs it (x quantized per token by fp8_quantize_rows, then the
 * GEMV), the GEMV alone and the quantizing launch alone; the CUDA-core one (gemv.cu's WFP8 build: 16-bit x read as
 * it is, no quantizing launch) as the backend runs it and alone; in us and in GB/s of FP8 weight bytes (codes and row
 * scales). Then each GEMV's builds at each row count (tensor cores: SPLIT x TILES x UNROLL; CUDA cores: SPLIT x ROWS
 * x UNROLL, with registers), each output checked against its route's rule (the same products, summed in another
 * order); the backend launches the rules (fp8-gemv.ts `fp8GemvRule`, gemv-config.ts `fp8CudaCoreGemvRule`). The
 * two routes' outputs differ by x's e4m3 rounding (the column "CC vs TC"). Weights random on the device (FP8 ones
 * quantized there), rotated over >= 256 MB so they come from HBM. Prints the table and appends it to
 * bench/RESULTS.md. Run on the device (compute capability 8.9+):
 *   node --import tsx bench/fp8-gemv.ts [--rows 1,2,4,8]
 */

import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { CudaBackend } from '../src/backend/cuda/backend.ts';
import { CompilePool, compileWorkerCount } from '../src/backend/cuda/compile-pool.ts';
import type { DevPtr } from '../src/backend/cuda/driver.ts';
import { fillUniform } from '../src/backend/cuda/elementwise.ts';
import { FP8_QUANTIZE_ROWS, type Fp8CudaTensor, fp8Bytes, quantizeRows } from '../src/backend/cuda/fp8.ts';
import {
  FP8_GEMV,
  type Fp8GemvConfig,
  fp8GemvDefines,
  fp8GemvLauncher,
  fp8GemvRule,
} from '../src/backend/cuda/fp8-gemv.ts';
import { fp8CudaCoreGemvRule, type GemvConfig, gemvShape } from '../src/backend/cuda/gemv-config.ts';
import { fp8CudaCoreGemvDefines, GEMV_FP8 } from '../src/backend/cuda/linear.ts';
import { rotatedLaunchMicros } from '../src/backend/cuda/stream-event.ts';
import { CudaTensor, DTYPE_DEFINE } from '../src/backend/cuda/tensor.ts';
import { settingsFromEnv } from '../src/cli/settings.ts';
import { relL2 } from '../test/helpers/gpu.ts';

const args = process.argv.slice(2);
const rowsArg = args.indexOf('--rows');
const rowCounts = (rowsArg >= 0 ? args[rowsArg + 1]! : '1,2,4,8').split(',').map(Number);

const backend = new CudaBackend({ ...settingsFromEnv().cuda, dtype: 'bf16', graphs: false });
const ctx = backend.ctx;
const drv = ctx.drv;
if (!backend.fp8Weights) throw new Error(`${drv.info.name} has no FP8 (compute capability < 8.9)`);

interface Case {
  label: string;
  /** Output features (gated: half the packed gate/up's rows). */
  n: number;
  k: number;
  gated: boolean;
}
const cases: Case[] = [
  { label: 'q/k/v 6144 x 4096', n: 6144, k: 4096, gated: false },
  { label: 'o 4096 x 4096', n: 4096, k: 4096, gated: false },
  { label: 'gate/up gated 2 x 14336 x 4096', n: 14336, k: 4096, gated: true },
  { label: 'down 4096 x 14336', n: 4096, k: 14336, gated: false },
];

/** The builds swept per shape; the rule's is timed first and is the reference. */
function configs(gated: boolean): Fp8GemvConfig[] {
  const out = [fp8GemvRule(gated)];
  for (const split of [2, 4, 8])
    for (const tiles of gated ? [2] : [1, 2])
      for (const unroll of [1, 2, 4, 8]) {
        const cfg = { split, tiles, unroll };
        if (!out.some((c) => c.split === split && c.tiles === tiles && c.unroll === unroll)) out.push(cfg);
      }
  return out;
}
const configName = (c: Fp8GemvConfig) => `s${c.split} t${c.tiles} u${c.unroll}`;

/** The CUDA-core GEMV's builds swept per shape and row count; the rule's is timed first and is the reference. */
function cudaCoreConfigs(c: Case, T: number): GemvConfig[] {
  const out = [fp8CudaCoreGemvRule(gemvShape(T, c.n, c.k, c.gated))];
  for (const split of [2, 4, 8])
    for (const rows of c.gated ? [1] : [1, 2, 4])
      for (const unroll of [1, 2, 4]) {
        if (!out.some((o) => o.split === split && o.rows === rows && o.unroll === unroll))
          out.push({ split, rows, unroll });
      }
  return out;
}
const cudaCoreName = (c: GemvConfig) => `s${c.split} r${c.rows} u${c.unroll}`;

// Every module this run launches, compiled in parallel up front.
const requests = [
  { file: FP8_QUANTIZE_ROWS.file, defines: {} },
  ...[false, true].flatMap((gated) =>
    configs(gated).map((cfg) => ({ file: FP8_GEMV.file, defines: fp8GemvDefines(cfg, gated) })),
  ),
  ...cases.flatMap((c) =>
    rowCounts.flatMap((T) =>
      cudaCoreConfigs(c, T).map((cfg) => ({
        file: GEMV_FP8.file,
        defines: fp8CudaCoreGemvDefines(gemvShape(T, c.n, c.k, c.gated), cfg),
      })),
    ),
  ),
].map((r) => ({ file: r.file, defines: { PAGODA_DTYPE: DTYPE_DEFINE.bf16, ...r.defines } }));
const pool = new CompilePool({ nvrtcRoots: ctx.settings.cudaRoots }, compileWorkerCount(requests.length));
ctx.mods.prefetch(requests, pool);

/** Enough random copies of a weight to exceed L2 several times over. */
const copies = (bytes: number) => Math.max(2, Math.ceil((256 << 20) / bytes));

const maxT = Math.max(...rowCounts);
const maxK = Math.max(...cases.map((c) => c.k));
const maxN = Math.max(...cases.map((c) => c.n));
const x = drv.alloc(maxT * maxK * 2);
fillUniform(ctx, x, maxT * maxK, 1, 1);
const xq = drv.alloc(maxT * maxK);
const xs = drv.alloc(maxT * 4);
const y = drv.alloc(maxT * maxN * 2);
const ref = drv.alloc(maxT * maxN * 2);
const ccRef = drv.alloc(maxT * maxN * 2);

/** Microseconds per launch of `body` over the rotated weights. */
const time = (n: number, body: (i: number) => void) => rotatedLaunchMicros(drv, n, body);

const host = (p: DevPtr, n: number) => backend.toHost(new CudaTensor([n], 'bf16', p));
const r1 = (v: number) => Math.round(v * 10) / 10;
const gbs = (bytes: number, us: number) => Math.round(bytes / (us * 1e3));

const header =
  '| weight | rows | TC linear us (GB/s) | TC GEMV alone us (GB/s) | x quantized us | CC linear us (GB/s) | CC GEMV alone us (GB/s) | bf16 linear us (GB/s) | TC vs bf16 | CC vs bf16 | CC vs TC rel. L2 | TC builds: GEMV alone us (GB/s) | CC builds: GEMV alone us (GB/s) registers |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|';
const lines: string[] = [];
console.log(header);
for (const c of cases) {
  const rows = c.gated ? 2 * c.n : c.n;
  const bytes = fp8Bytes([rows, c.k]);
  // Dummy bf16 weights (no bytes) asked as FP8: uniform values made and quantized on the device.
  const load = () =>
    backend.loadWeight(
      { name: c.label, shape: [rows, c.k], dtype: 'bf16', bytes: new Uint8Array(0) },
      { quantize: 'fp8' },
    ) as Fp8CudaTensor;
  const weights = Array.from({ length: copies(bytes) }, load);
  backend.releaseLoadStaging();
  const dense = Array.from({ length: copies(rows * c.k * 2) }, (_, i) => {
    const p = drv.alloc(rows * c.k * 2);
    fillUniform(ctx, p, rows * c.k, 2 + i, 1 / Math.sqrt(c.k));
    return new CudaTensor([rows, c.k], 'bf16', p);
  });
  for (const T of rowCounts) {
    const xt = new CudaTensor([T, c.k], 'bf16', x);
    const linear = (w: CudaTensor | Fp8CudaTensor) => {
      ctx.arena.reset();
      return c.gated ? backend.linearActMul(xt, w, undefined, 'silu') : backend.linear(xt, w);
    };
    const route = (r: typeof ctx.settings.fp8GemvRoute) => {
      ctx.settings.fp8GemvRoute = r;
      return time(weights.length, (i) => linear(weights[i]!));
    };
    const ccUs = route('cuda-cores');
    const fp8Us = route('tensor-cores');
    const bf16Us = time(dense.length, (i) => linear(dense[i]!));
    const quantUs = time(weights.length, () => quantizeRows(ctx, xq, xs, x, T, c.k));
    quantizeRows(ctx, xq, xs, x, T, c.k);
    const gemv = (cfg: Fp8GemvConfig) => fp8GemvLauncher(ctx, T, c.n, c.k, { gated: c.gated, config: cfg }).launch;
    const builds = configs(c.gated).map((cfg, b) => {
      const launch = gemv(cfg);
      launch(b === 0 ? ref : y, xq, xs, weights[0]!.codes, weights[0]!.scales);
      const err = b === 0 ? 0 : relL2(host(y, T * c.n), host(ref, T * c.n));
      const us = time(weights.length, (i) => launch(y, xq, xs, weights[i]!.codes, weights[i]!.scales));
      return { name: configName(cfg), us, err };
    });
    const ccBuilds = cudaCoreConfigs(c, T).map((cfg, b) => {
      const launch = backend.linears.fp8CudaCoreLauncher(T, c.n, c.k, { gated: c.gated, config: cfg });
      launch(b === 0 ? ccRef : y, x, weights[0]!);
      const err = b === 0 ? 0 : relL2(host(y, T * c.n), host(ccRef, T * c.n));
      const us = time(weights.length, (i) => launch(y, x, weights[i]!));
      const { registers, localBytes } = backend.linears
        .fp8CudaCoreKernel(gemvShape(T, c.n, c.k, c.gated), cfg)
        .resources();
      const name = `${cudaCoreName(cfg)} ${registers}r${localBytes ? ` ${localBytes}B spilled` : ''}`;
      return { name, us, err };
    });
    const ccVsTc = relL2(host(ccRef, T * c.n), host(ref, T * c.n));
    const sweep = (all: { name: string; us: number; err: number }[]) => {
      const best = all.filter((b) => b.err <= 1e-3).reduce((a, b) => (b.us < a.us ? b : a));
      return all
        .map((b) => {
          const mark = b === best ? '**' : '';
          const bad = b.err > 1e-3 ? ` MISMATCH ${b.err.toExponential(1)}` : '';
          return `${mark}${b.name} ${r1(b.us)} (${gbs(bytes, b.us)})${mark}${bad}`;
        })
        .join(', ');
    };
    const [rule, ccRule] = [builds[0]!, ccBuilds[0]!];
    const line = `| ${c.label} | ${T} | ${r1(fp8Us)} (${gbs(bytes, fp8Us)}) | ${r1(rule.us)} (${gbs(bytes, rule.us)}) | ${r1(quantUs)} | ${r1(ccUs)} (${gbs(bytes, ccUs)}) | ${r1(ccRule.us)} (${gbs(bytes, ccRule.us)}) | ${r1(bf16Us)} (${gbs(rows * c.k * 2, bf16Us)}) | ${(bf16Us / fp8Us).toFixed(2)}x | ${(bf16Us / ccUs).toFixed(2)}x | ${ccVsTc.toExponential(1)} | ${sweep(builds)} | ${sweep(ccBuilds)} |`;
    console.log(line);
    lines.push(line);
  }
}

const section = `## FP8 decode GEMV, tensor cores and CUDA cores (${new Date().toISOString().slice(0, 10)}, ${drv.info.name})\n\n\`node --import tsx bench/fp8-gemv.ts --rows ${rowCounts.join(',')}\`: Llama-3-8B decoder shapes, random weights, bf16 x; TC: the tensor-core route, its linear x's quantizing launch + fp8_gemv; CC: the CUDA-core route (gemv.cu's FP8 build over x as it is), its linear the GEMV alone (gated: act(gate) · up); each the rule's build; GB/s of FP8 weight bytes (bf16: of its own); CC vs TC: the relative L2 between the two rules' outputs (x's e4m3 rounding). Builds: the rule's first, the fastest in bold.\n\n${header}\n${lines.join('\n')}\n`;
appendFileSync(join(import.meta.dirname, 'RESULTS.md'), `\n${section}`);
pool.close();
