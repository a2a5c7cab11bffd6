/**
 * The quantized decode GEMV's two routes on the Llama-3-8B weight shapes (Q4_K_M's types, and Q8_0), bf16: float
 * products over the levels (quant_gemv_tN, x exact) against the integer route (quant_act_q8 then quant_gemv_q8_tN:
 * x quantized to 8 bits per 32 values, dp4a), with the bf16 weight of the same shape through the backend's own linear
 * as the baseline of the same run. Weights are random blocks made on the device, rotated over >= 256 MB so they come
 * from HBM. Each integer result is checked against the float route's first. The integer GEMV alone (x already
 * quantized) is then swept over its tuning defines (Q8_ROWS output features per warp, Q8_UNROLL), each configuration's
 * output checked against the default's; the backend launches the default. Then the prefill path (dequantize into
 * the scratch + cuBLASLt) at 256 rows for several scratch run sizes, against the bf16 GEMM; and at 12-32 rows against
 * the integer GEMV in launches of 8 rows (where the GEMV's 8-row limit should lie). Those tables time the dequantize
 * route (QuantLinear.route); the fused table times the fused GEMM (kernels/quant_gemm.cu, the default route at 9-512
 * rows) against it and the bf16 GEMM at 16-512 rows, each output checked against the dequantize route's. Prints the
 * tables and appends them to bench/RESULTS.md. Run on the device:
 *   node --import tsx bench/quant-gemv.ts [--rows 1,4] [--fused-only]   (--fused-only: the fused table alone)
 */

import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { CudaBackend } from '../src/backend/cuda/backend.ts';
import { CompilePool, compileWorkerCount } from '../src/backend/cuda/compile-pool.ts';
import type { DevPtr } from '../src/backend/cuda/driver.ts';
import { fillUniform } from '../src/backend/cuda/elementwise.ts';
import type { Defines } from '../src/backend/cuda/modules.ts';
import { QUANT_GEMM, quantGemmPlan } from '../src/backend/cuda/quant-gemm.ts';
import { QTYPE, QUANT_ACT_Q8, QUANT_GEMV, QUANT_GEMV_Q8 } from '../src/backend/cuda/quant-kernels.ts';
import { quantizeActivationsInto } from '../src/backend/cuda/quant-linear.ts';
import { type QuantCudaPart, type QuantCudaTensor, quantGemvTmax } from '../src/backend/cuda/quant-tensor.ts';
import { rotatedLaunchMicros } from '../src/backend/cuda/stream-event.ts';
import { CudaTensor, DTYPE_DEFINE } from '../src/backend/cuda/tensor.ts';
import { settingsFromEnv } from '../src/cli/settings.ts';
import type { QuantType } from '../src/primitives/ggml-types.ts';
import { relL2 } from '../test/helpers/gpu.ts';

const args = process.argv.slice(2);
const rowsArg = args.indexOf('--rows');
const rowCounts = (rowsArg >= 0 ? args[rowsArg + 1]! : '1,4').split(',').map(Number);
const fusedOnly = args.includes('--fused-only');

const backend = new CudaBackend({ ...settingsFromEnv().cuda, dtype: 'bf16', graphs: false });
const ctx = backend.ctx;
const drv = ctx.drv;
// The tables but the fused one time the dequantize route past 8 rows; fusedRows switches between the two.
backend.linears.quant.route = 'dequantize';

interface Case {
  label: string;
  m: number;
  k: number;
  type: QuantType;
}
const cases: Case[] = [
  { label: 'q/k/v 6144 x 4096', m: 6144, k: 4096, type: 'q4_k' },
  { label: 'o 4096 x 4096', m: 4096, k: 4096, type: 'q4_k' },
  { label: 'gate/up 28672 x 4096', m: 28672, k: 4096, type: 'q4_k' },
  { label: 'down 4096 x 14336', m: 4096, k: 14336, type: 'q4_k' },
  { label: 'down 4096 x 14336', m: 4096, k: 14336, type: 'q6_k' },
  { label: 'lm_head 128256 x 4096', m: 128256, k: 4096, type: 'q6_k' },
  { label: 'gate/up 28672 x 4096', m: 28672, k: 4096, type: 'q8_0' },
  { label: 'down 4096 x 14336', m: 4096, k: 14336, type: 'q8_0' },
];

/** The integer GEMV's tuning defines swept (kernels/quant.cu); the first is the default the backend launches. */
interface Q8Config {
  rows: number;
  unroll: number;
}
const CONFIGS: Q8Config[] = [
  { rows: 1, unroll: 2 },
  { rows: 1, unroll: 4 },
  { rows: 2, unroll: 2 },
  { rows: 2, unroll: 4 },
  { rows: 4, unroll: 2 },
];
const configDefines = (type: QuantType, cfg: Q8Config): Defines =>
  cfg === CONFIGS[0] ? { QTYPE: QTYPE[type] } : { QTYPE: QTYPE[type], Q8_ROWS: cfg.rows, Q8_UNROLL: cfg.unroll };
const configName = (cfg: Q8Config) => `R${cfg.rows} U${cfg.unroll}`;

// Every module this run launches, compiled in parallel up front (a cold cache would otherwise compile them one by one).
const types = [...new Set(cases.map((c) => c.type))];
const requests = [
  { file: QUANT_ACT_Q8.file, defines: {} as Defines },
  ...types.map((t) => ({ file: QUANT_GEMM[16].file, defines: { QTYPE: QTYPE[t] } as Defines })),
  ...types.flatMap((t) => CONFIGS.map((cfg) => ({ file: QUANT_GEMV_Q8[1].file, defines: configDefines(t, cfg) }))),
].map((r) => ({ file: r.file, defines: { PAGODA_DTYPE: DTYPE_DEFINE.bf16, ...r.defines } }));
const pool = new CompilePool({ nvrtcRoots: ctx.settings.cudaRoots }, compileWorkerCount(requests.length));
ctx.mods.prefetch(requests, pool);

/** Enough random copies of a weight to exceed L2 several times over. */
function copies(bytes: number): number {
  return Math.max(2, Math.ceil((256 << 20) / bytes));
}

const maxT = Math.max(...rowCounts);
const maxK = Math.max(...cases.map((c) => c.k));
const maxM = Math.max(...cases.map((c) => c.m));
const x = drv.alloc(maxT * maxK * 2);
fillUniform(ctx, x, maxT * maxK, 1, 1);
const y = drv.alloc(maxT * maxM * 2);
const ref = drv.alloc(maxT * maxM * 2);
const xq = drv.alloc(maxT * maxK);
const xs = drv.alloc((maxT * maxK) / 4);
const PREFILL_ROWS = 256;
const xBig = drv.alloc(PREFILL_ROWS * maxK * 2);
fillUniform(ctx, xBig, PREFILL_ROWS * maxK, 3, 1);
/** The whole largest weight dequantized at once (the dequantization alone is timed into it). */
const scratchAll = drv.alloc(Math.max(...cases.map((c) => c.m * c.k)) * 2);
const prefillLines: string[] = [];
/** Row counts past the GEMV's 8 where the integer GEMV in launches of up to 8 rows is timed against the prefill path. */
const MID_ROWS = [12, 16, 24, 32];
const midQ = {
  xq: drv.alloc(Math.max(...MID_ROWS) * maxK),
  xs: drv.alloc((Math.max(...MID_ROWS) * maxK) / 4),
};
const midY = drv.alloc(Math.max(...MID_ROWS) * maxM * 2);
const midLines: string[] = [];
/** Row counts where the fused GEMM is timed against the dequantize route and the bf16 GEMM, and their x. */
const FUSED_ROWS = [16, 64, 128, 256, 512];
const xFused = drv.alloc(Math.max(...FUSED_ROWS) * maxK * 2);
fillUniform(ctx, xFused, Math.max(...FUSED_ROWS) * maxK, 4, 1);
const fusedLines: string[] = [];

/** Microseconds per launch of `body` over the rotated weights. */
const time = (n: number, body: (i: number) => void) => rotatedLaunchMicros(drv, n, body);

const host = (p: DevPtr, n: number) => backend.toHost(new CudaTensor([n], 'bf16', p));
const r1 = (v: number) => Math.round(v * 10) / 10;

/** A GEMV launch's arguments after its input: part `p` against `rows` rows of x, no bias, outputs p.rows apart. */
const weightArgs = (p: QuantCudaPart, rows: number, k: number) => ({
  w: p.ptr,
  bias: 0n,
  rows,
  n: p.rows,
  k,
  rowBytes: p.rowBytes,
  ldy: p.rows,
});

function floatRoute(p: QuantCudaPart, T: number, k: number, out: DevPtr): void {
  ctx
    .kernel(QUANT_GEMV[quantGemvTmax(T)], { QTYPE: QTYPE[p.type] })
    .launch([Math.ceil(p.rows / 8)], [256], { y: out, x, ...weightArgs(p, T, k) });
}
const quantizeX = (T: number, k: number) => quantizeActivationsInto(ctx, x, T * k, { xq, xs });
/** The integer GEMV alone over x quantized by `quantizeX`, in configuration `cfg`. */
function integerGemv(p: QuantCudaPart, T: number, k: number, out: DevPtr, cfg = CONFIGS[0]!): void {
  const grid = [Math.ceil(p.rows / (8 * cfg.rows))] as const;
  ctx
    .kernel(QUANT_GEMV_Q8[quantGemvTmax(T)], configDefines(p.type, cfg))
    .launch(grid, [256], { y: out, xq, xs, ...weightArgs(p, T, k) });
}
function integerRoute(p: QuantCudaPart, T: number, k: number, out: DevPtr): void {
  quantizeX(T, k);
  integerGemv(p, T, k, out);
}

const header =
  '| weight | type | rows | float route us | integer route us (x quantized, us) | GB/s integer | bf16 linear us | integer vs float | integer vs bf16 | rel. L2 integer vs float | integer GEMV alone by config us |\n|---|---|---|---|---|---|---|---|---|---|---|';
const lines: string[] = [];
console.log(header);
for (const c of cases) {
  // Dummy blocks (no bytes): random blocks of the type, made on the device.
  const load = () =>
    backend.loadWeight({
      name: c.label,
      shape: [c.m, c.k],
      dtype: c.type,
      bytes: new Uint8Array(0),
    }) as QuantCudaTensor;
  const first = load();
  const bytes = first.byteLength;
  const n = copies(bytes);
  const weights = [first, ...Array.from({ length: n - 1 }, load)];
  const parts = weights.map((w) => w.parts[0]!);
  const dense = Array.from({ length: copies(c.m * c.k * 2) }, () => {
    const p = drv.alloc(c.m * c.k * 2);
    fillUniform(ctx, p, c.m * c.k, 2, 1 / Math.sqrt(c.k));
    return new CudaTensor([c.m, c.k], 'bf16', p);
  });
  for (const T of fusedOnly ? [] : rowCounts) {
    floatRoute(parts[0]!, T, c.k, ref);
    integerRoute(parts[0]!, T, c.k, y);
    const want = host(ref, T * c.m);
    const err = relL2(host(y, T * c.m), want);
    const floatUs = time(n, (i) => floatRoute(parts[i]!, T, c.k, y));
    const intUs = time(n, (i) => integerRoute(parts[i]!, T, c.k, y));
    const actUs = time(n, () => quantizeX(T, c.k));
    const xt = new CudaTensor([T, c.k], 'bf16', x);
    const bf16Us = time(dense.length, (i) => {
      ctx.arena.reset();
      backend.linear(xt, dense[i]!);
    });
    const line = `| ${c.label} | ${c.type} | ${T} | ${r1(floatUs)} | ${r1(intUs)} (${r1(actUs)}) | ${Math.round(bytes / (intUs * 1e3))} | ${r1(bf16Us)} | ${(floatUs / intUs).toFixed(2)}x | ${(bf16Us / intUs).toFixed(2)}x | ${err.toExponential(1)} | ${sweep(parts, T, c.k, bytes)} |`;
    console.log(line);
    lines.push(line);
  }
  if (!fusedOnly && (c.type === 'q4_k' || c.label.startsWith('lm_head'))) {
    prefillRows(c, weights, dense, bytes);
    midRows(c, weights);
  }
  // The fused GEMM's shapes: Q4_K_M's q4_k projections and its q6_k down and LM head.
  if (c.type !== 'q8_0') fusedRows(c, weights, dense, bytes);
  for (const d of dense) drv.free(d.ptr);
}

/** The integer GEMV alone in each configuration (read rate), each checked against the default's output first. */
function sweep(parts: QuantCudaPart[], T: number, k: number, bytes: number): string {
  const p = parts[0]!;
  quantizeX(T, k);
  integerGemv(p, T, k, ref);
  const want = host(ref, T * p.rows);
  return CONFIGS.map((cfg) => {
    integerGemv(p, T, k, y, cfg);
    const err = relL2(host(y, T * p.rows), want);
    const us = time(parts.length, (i) => integerGemv(parts[i]!, T, k, y, cfg));
    const checked = err <= 1e-6 ? '' : ` MISMATCH ${err.toExponential(1)}`;
    return `${configName(cfg)} ${r1(us)} (${Math.round(bytes / (us * 1e3))} GB/s)${checked}`;
  }).join(', ');
}

/**
 * The prefill path at PREFILL_ROWS rows (the offline workload's decode batches): the weight dequantized into the
 * scratch a run at a time, each run's GEMM after it, for several run sizes; the dequantization alone; the bf16
 * weight's GEMM.
 */
function prefillRows(c: Case, weights: QuantCudaTensor[], dense: CudaTensor[], bytes: number): void {
  const q = backend.linears.quant;
  const xt = new CudaTensor([PREFILL_ROWS, c.k], 'bf16', xBig);
  const linear = (w: CudaTensor | QuantCudaTensor) => {
    ctx.arena.reset();
    backend.linear(xt, w);
  };
  const bf16Us = time(dense.length, (i) => linear(dense[i]!));
  const saved = q.runBytes;
  for (const mb of [16, 32, 64]) {
    q.runBytes = mb << 20;
    const p = weights[0]!.parts[0]!;
    const dequantUs = time(weights.length, (i) => q.dequantizeRows(weights[i]!.parts[0]!, 0, p.rows, c.k, scratchAll));
    q.reserveFor(weights[0]!);
    const us = time(weights.length, (i) => linear(weights[i]!));
    const line = `| ${c.label} | ${c.type} | ${PREFILL_ROWS} | ${mb} | ${r1(us)} | ${r1(dequantUs)} (${Math.round(bytes / (dequantUs * 1e3))} GB/s read) | ${r1(bf16Us)} | ${(bf16Us / us).toFixed(2)}x |`;
    console.log(line);
    prefillLines.push(line);
  }
  q.runBytes = saved;
}

/**
 * 12-32 rows (a server's decode batches past 8): x quantized once, then the integer GEMV in launches of up to 8 rows
 * (each reading the whole weight again), against the dequantize + GEMM path the backend takes there; each integer
 * result checked against the prefill path's.
 */
function midRows(c: Case, weights: QuantCudaTensor[]): void {
  const xt = (T: number) => new CudaTensor([T, c.k], 'bf16', xBig);
  const integer = (w: QuantCudaTensor, T: number) => {
    const p = w.parts[0]!;
    quantizeActivationsInto(ctx, xBig, T * c.k, midQ);
    for (let t0 = 0; t0 < T; t0 += 8) {
      const rows = Math.min(8, T - t0);
      ctx.kernel(QUANT_GEMV_Q8[quantGemvTmax(rows)], { QTYPE: QTYPE[p.type] }).launch([Math.ceil(p.rows / 8)], [256], {
        y: midY + BigInt(t0 * c.m * 2),
        xq: midQ.xq + BigInt(t0 * c.k),
        xs: midQ.xs + BigInt((t0 * c.k) / 4),
        ...weightArgs(p, rows, c.k),
      });
    }
  };
  const prefill = (w: QuantCudaTensor, T: number) => {
    ctx.arena.reset();
    return backend.linear(xt(T), w);
  };
  for (const T of MID_ROWS) {
    const want = backend.toHost(prefill(weights[0]!, T));
    integer(weights[0]!, T);
    const err = relL2(host(midY, T * c.m), want);
    const intUs = time(weights.length, (i) => integer(weights[i]!, T));
    const prefillUs = time(weights.length, (i) => prefill(weights[i]!, T));
    const line = `| ${c.label} | ${c.type} | ${T} | ${r1(intUs)} | ${r1(prefillUs)} | ${(prefillUs / intUs).toFixed(2)}x | ${err.toExponential(1)} |`;
    console.log(line);
    midLines.push(line);
  }
}

/**
 * The fused GEMM (the backend's linear on the fused route) at FUSED_ROWS rows: its time and read rate, the dequantize
 * route's and the bf16 GEMM's at the same rows, and its output against the dequantize route's; the plan's row tile and
 * K split beside it.
 */
function fusedRows(c: Case, weights: QuantCudaTensor[], dense: CudaTensor[], bytes: number): void {
  const q = backend.linears.quant;
  const linear = (w: CudaTensor | QuantCudaTensor, T: number) => {
    ctx.arena.reset();
    return backend.linear(new CudaTensor([T, c.k], 'bf16', xFused), w) as CudaTensor;
  };
  const onRoute = <R>(route: 'fused' | 'dequantize', f: () => R): R => {
    q.route = route;
    try {
      return f();
    } finally {
      q.route = 'dequantize';
    }
  };
  for (const T of FUSED_ROWS) {
    const want = onRoute('dequantize', () => backend.toHost(linear(weights[0]!, T)));
    const err = relL2(
      onRoute('fused', () => backend.toHost(linear(weights[0]!, T))),
      want,
    );
    const fusedUs = onRoute('fused', () => time(weights.length, (i) => linear(weights[i]!, T)));
    const dequantizeUs = onRoute('dequantize', () => time(weights.length, (i) => linear(weights[i]!, T)));
    const bf16Us = time(dense.length, (i) => linear(dense[i]!, T));
    const plan = quantGemmPlan(T, c.m, c.k, c.type, drv.info.smCount);
    const line = `| ${c.label} | ${c.type} | ${T} | ${r1(fusedUs)} (${Math.round(bytes / (fusedUs * 1e3))} GB/s read) | ${r1(dequantizeUs)} | ${r1(bf16Us)} | ${(fusedUs / bf16Us).toFixed(2)}x | ${(dequantizeUs / fusedUs).toFixed(2)}x | ${err.toExponential(1)} | ${plan.tile} x ${plan.rowTiles}, split ${plan.split} |`;
    console.log(line);
    fusedLines.push(line);
  }
}

const midHeader =
  '| weight | type | rows | integer GEMV, launches of 8 rows us | dequantize + GEMM us | GEMV speed-up | rel. L2 |\n|---|---|---|---|---|---|---|';
console.log(`\n${midHeader}\n${midLines.join('\n')}`);
const prefillHeader =
  '| weight | type | rows | scratch run MB | dequantize + GEMM us | dequantize alone us | bf16 GEMM us | vs bf16 |\n|---|---|---|---|---|---|---|---|';
console.log(`\n${prefillHeader}\n${prefillLines.join('\n')}`);
const fusedHeader =
  '| weight | type | rows | fused us | dequantize + GEMM us | bf16 GEMM us | fused / bf16 | speed-up over dequantize | rel. L2 vs dequantize | row tile x tiles, K split |\n|---|---|---|---|---|---|---|---|---|---|';
console.log(`\n${fusedHeader}\n${fusedLines.join('\n')}`);
const tables = [
  [header, lines],
  [prefillHeader, prefillLines],
  [fusedHeader, fusedLines],
  [midHeader, midLines],
] as const;
const section = `## Quantized linear, decode GEMV routes and the prefill path (${new Date().toISOString().slice(0, 10)}, ${drv.info.name})\n\n\`node --import tsx bench/quant-gemv.ts ${args.join(' ')}\`: Llama-3-8B weight shapes, random blocks, bf16 x; the bf16 weight of the same shape through the backend's linear is the baseline of the same run.\n\n${tables
  .filter(([, rows]) => rows.length > 0)
  .map(([head, rows]) => `${head}\n${rows.join('\n')}\n`)
  .join('\n')}`;
appendFileSync(join(import.meta.dirname, 'RESULTS.md'), `\n${section}`);
pool.close();
