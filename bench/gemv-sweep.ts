/**
 * The decode GEMV's configurations (kernels/gemv.cu: SPLIT warps per row group, ROWS weight rows per warp, UNROLL)
 * timed on each Llama-3-8B weight shape at 1..32 rows, with weights rotated over >= 256 MB so they come from HBM,
 * against a device copy of the same bytes (the ceiling) and against cuBLASLt for the same product (+ act_mul for the
 * gated kernel: what the backend runs instead). Each configuration's output is first checked against cuBLASLt; one
 * that disagrees is never chosen. Prints each configuration's registers and spilled bytes per thread, and the best per
 * shape next to the launcher's current choice and cuBLASLt; `--write-table FILE` writes the best as this card's
 * table among the backend's (src/backend/cuda/gemv-table.json: one per card; the launcher's rule is kept where it is
 * within 1 % of the best) with both times: the backend then runs the GEMV only where it beat cuBLASLt, at every row
 * count measured. This card's entries not measured in this run are kept, and the other cards' tables. `--models DIR,...` sweeps those model configs' decode shapes instead (q/k/v
 * packed, o, gate/up gated, down, the LM head). Run on the device:
 *   node --import tsx bench/gemv-sweep.ts [--batches 1,2,4,8,16,32] [--models DIR,...] [--budget-s 120]
 *     [--write-table FILE]
 */

import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { CudaBackend } from '../src/backend/cuda/backend.ts';
import type { DevPtr } from '../src/backend/cuda/driver.ts';
import { actMulInto, fillUniform } from '../src/backend/cuda/elementwise.ts';
import {
  type GemvConfig,
  type GemvShape,
  type GemvTable,
  type GemvTableEntry,
  gemvRule,
  gemvShape,
  pickGemvConfig,
  readGemvTable,
  readGemvTables,
} from '../src/backend/cuda/gemv-config.ts';
import { rotatedLaunchMicros } from '../src/backend/cuda/stream-event.ts';
import { CudaTensor } from '../src/backend/cuda/tensor.ts';
import { settingsFromEnv } from '../src/cli/settings.ts';
import { loadModelConfig } from '../src/loader/hf-config.ts';
import { relL2 } from '../test/helpers/gpu.ts';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const batches = (opt('batches') ?? '1,2,4,8,16,32').split(',').map(Number);
const maxT = Math.max(...batches);
const deadline = performance.now() + Number(opt('budget-s') ?? 120) * 1000;
const tablePath = opt('write-table');

const backend = new CudaBackend({ ...settingsFromEnv().cuda, dtype: 'bf16', graphs: false });
const drv = backend.ctx.drv;
const sms = drv.info.smCount;
const current = readGemvTable(drv.info);

interface Case {
  label: string;
  m: number;
  k: number;
  gated: boolean;
}
const llama3Cases: Case[] = [
  { label: 'q/k/v packed 6144 x 4096', m: 6144, k: 4096, gated: false },
  { label: 'o 4096 x 4096', m: 4096, k: 4096, gated: false },
  { label: 'gate/up packed 28672 x 4096', m: 28672, k: 4096, gated: false },
  { label: 'gate/up gated 2 x 14336 x 4096', m: 14336, k: 4096, gated: true },
  { label: 'down 4096 x 14336', m: 4096, k: 14336, gated: false },
  { label: 'lm_head 128256 x 4096', m: 128256, k: 4096, gated: false },
];
/** A dense decoder's decode GEMVs: q/k/v packed, o, gate/up through the gated kernel, down, the LM head. */
function modelCases(dir: string): Case[] {
  const c = loadModelConfig(dir);
  const name = basename(dir);
  const qkv = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
  const shapes: [string, number, number, boolean][] = [
    ['q/k/v packed', qkv, c.hiddenSize, false],
    ['o', c.hiddenSize, c.numHeads * c.headDim, false],
    ['gate/up gated 2 x', c.intermediateSize, c.hiddenSize, true],
    ['down', c.hiddenSize, c.intermediateSize, false],
    ['lm_head', c.vocabSize, c.hiddenSize, false],
  ];
  return shapes.map(([what, m, k, gated]) => ({ label: `${name} ${what} ${m} x ${k}`, m, k, gated }));
}
const models = opt('models');
const cases = models ? models.split(',').flatMap(modelCases) : llama3Cases;

/**
 * Every configuration tried at `T` rows: the full grid at one row (the latency case), a smaller one above; from 16
 * rows 4 weight rows per warp again (more FMAs per x load, 4 x TMAX accumulators per thread); up to 8 rows each also
 * with its weights loaded past L1.
 */
function configs(T: number, gated: boolean): GemvConfig[] {
  const out: GemvConfig[] = [];
  const rows = gated ? [1] : T === 1 || T >= 16 ? [1, 2, 4] : [1, 2];
  const unrolls = T === 1 ? [2, 4, 8] : [4];
  for (const stream of T <= 8 ? [false, true] : [false])
    for (const split of [1, 2, 4, 8])
      for (const r of rows)
        for (const unroll of unrolls) out.push({ split, rows: r, unroll, ...(stream && { stream }) });
  return out;
}

let seed = 1;
function random(elems: number, scale: number): DevPtr {
  const p = drv.alloc(elems * 2);
  fillUniform(backend.ctx, p, elems, seed++, scale);
  return p;
}

interface Loaded extends Case {
  bytes: number;
  ws: DevPtr[];
}
const loaded: Loaded[] = cases.map((c) => {
  const bytes = (c.gated ? 2 : 1) * c.m * c.k * 2;
  const copies = Math.max(2, Math.ceil((256 << 20) / bytes));
  return { ...c, bytes, ws: Array.from({ length: copies }, () => random(bytes / 2, 1 / Math.sqrt(c.k))) };
});
const maxK = Math.max(...cases.map((c) => c.k));
const maxOut = Math.max(...cases.map((c) => (c.gated ? 2 : 1) * c.m));
const x = random(maxT * maxK, 1);
const y = drv.alloc(maxT * maxOut * 2);
const ref = drv.alloc(maxT * maxOut * 2);
const wide = drv.alloc(maxT * maxOut * 2);

/** Microseconds per launch of `body` over the rotated weights (best of two passes of 4 rounds). */
function time(c: Loaded, body: (w: DevPtr, i: number) => void): number {
  return rotatedLaunchMicros(drv, c.ws.length, (i) => body(c.ws[i]!, i));
}

const gbs = (c: Loaded, us: number) => c.bytes / (us * 1e3);
const round = (us: number) => Math.round(us * 10) / 10;
const host = (p: DevPtr, n: number) => backend.toHost(new CudaTensor([n], 'bf16', p));
/** What the backend runs without the GEMV: cuBLASLt into `out` (then act_mul for the gated case). */
function cublaslt(c: Loaded, T: number, w: DevPtr, out: DevPtr): void {
  backend.linears.lt.matmul(c.gated ? wide : out, x, w, T, c.gated ? 2 * c.m : c.m, c.k, 'bf16', 'bf16');
  if (c.gated) actMulInto(backend.ctx, out, wide, T, c.m, 'silu');
}
/** cuBLASLt's answer for the first weight copy. */
function reference(c: Loaded, T: number): Float32Array {
  cublaslt(c, T, c.ws[0]!, ref);
  return host(ref, T * c.m);
}

const shapeOf = (c: Case, T: number): GemvShape => gemvShape(T, c.m, c.k, c.gated);
const key = (c: GemvConfig) => `s${c.split} r${c.rows} u${c.unroll}${c.stream ? ' stream' : ''}`;
const same = (a: GemvConfig, b: GemvConfig) =>
  a.split === b.split && a.rows === b.rows && a.unroll === b.unroll && !a.stream === !b.stream;

const copyGbs = new Map<Loaded, number>();
for (const c of loaded)
  copyGbs.set(c, (2 * c.bytes) / (time(c, (w, i) => drv.copy(c.ws[(i + 1) % c.ws.length]!, w, c.bytes)) * 1e3));

const entries: GemvTableEntry[] = [];
const summary: string[] = [];
let outOfTime = false;
console.log(
  `| rows | weights | config | registers, spilled bytes | us | GB/s | rel. L2 vs cuBLASLt |\n|---|---|---|---|---|---|---|`,
);
for (const T of batches) {
  for (const c of loaded) {
    const shape = shapeOf(c, T);
    const want = reference(c, T);
    const results: { cfg: GemvConfig; us: number }[] = [];
    let complete = true;
    for (const cfg of configs(T, c.gated)) {
      if (performance.now() > deadline) {
        outOfTime = true;
        complete = false;
        break;
      }
      const gemv = backend.linears.gemvLauncher(T, c.m, c.k, { gated: c.gated, config: cfg });
      const { registers, localBytes } = backend.linears.gemvKernel(shape, cfg).resources();
      gemv(y, x, c.ws[0]!);
      const err = relL2(host(y, T * c.m), want);
      const us = time(c, (w) => gemv(y, x, w));
      console.log(
        `| ${T} | ${c.label} | ${key(cfg)} | ${registers}, ${localBytes} | ${us.toFixed(1)} | ${gbs(c, us).toFixed(0)} | ${err.toExponential(1)} |`,
      );
      if (err <= 1e-2) results.push({ cfg, us });
      else console.log(`  ${key(cfg)} disagrees with cuBLASLt (${err}): not eligible`);
    }
    if (!results.length) continue;
    const rule = gemvRule(shape);
    const ruleUs = results.find((r) => same(r.cfg, rule))?.us ?? Number.NaN;
    let best = results.reduce((a, b) => (b.us < a.us ? b : a));
    if (ruleUs <= best.us * 1.01) best = { cfg: rule, us: ruleUs };
    const ltUs = time(c, (w) => cublaslt(c, T, w, y));
    const wins = best.us < ltUs;
    // The backend runs the GEMV only where the entry's time beats cuBLASLt's (gemv-config.ts gemvWins), so only a
    // shape whose every configuration was timed gets an entry; one cut short keeps the table's previous entry.
    if (complete) entries.push({ ...shape, ...best.cfg, us: round(best.us), cublasltUs: round(ltUs) });
    const now = pickGemvConfig(current, shape, drv.info);
    const nowUs = results.find((r) => same(r.cfg, now))?.us ?? Number.NaN;
    let extra = '';
    if (c.gated) {
      // The unfused pair the gated kernel replaces: the packed GEMV, then act_mul.
      const packed = backend.linears.gemvLauncher(T, 2 * c.m, c.k);
      const us = time(c, (w) => {
        packed(wide, x, w);
        actMulInto(backend.ctx, y, wide, T, c.m, 'silu');
      });
      extra = `; unfused GEMV + act_mul ${us.toFixed(1)} us`;
    }
    summary.push(
      `| ${T} | ${c.label} | ${key(rule)}: ${ruleUs.toFixed(1)} us, ${gbs(c, ruleUs).toFixed(0)} | ${key(now)}: ${gbs(c, nowUs).toFixed(0)} | **${key(best.cfg)}: ${best.us.toFixed(1)} us, ${gbs(c, best.us).toFixed(0)}** | ${ltUs.toFixed(1)} us, ${gbs(c, ltUs).toFixed(0)} | ${wins ? 'GEMV' : 'cuBLASLt'} x${(Math.max(best.us, ltUs) / Math.min(best.us, ltUs)).toFixed(2)} | ${copyGbs.get(c)!.toFixed(0)}${extra} |`,
    );
  }
}

console.log(
  `\n${drv.info.name}, ${sms} SMs, bf16. GB/s = weight bytes / time; copy = read + write of a device-to-device copy.${outOfTime ? ' OUT OF TIME: some configurations were not measured.' : ''}`,
);
console.log(
  `\n| rows | weights | rule (shapes the table lacks): GB/s | table in use: GB/s | best measured | cuBLASLt (gated: + silu_mul): us, GB/s | faster | copy GB/s |\n|---|---|---|---|---|---|---|---|`,
);
for (const line of summary) console.log(line);
if (tablePath) {
  // This card's entries that this run did not (completely) measure stay; other cards' tables stay as they are.
  const id = (e: GemvShape) => `${e.m},${e.k},${e.gated},${e.tmax}`;
  const measured = new Set(entries.map(id));
  const kept = current.entries.filter((e) => !measured.has(id(e)));
  const run = `bench/gemv-sweep.ts --batches ${batches.join(',')}${models ? ` --models ${models}` : ''}, ${new Date().toISOString().slice(0, 10)} (bench/RESULTS.md)`;
  const table: GemvTable = {
    device: drv.info.name,
    smCount: sms,
    // One description per distinct run: this one, then those whose rows were kept.
    measured: kept.length ? [...new Set([run, ...current.measured.split('; ')])].join('; ') : run,
    entries: [...kept, ...entries].sort((a, b) => a.tmax - b.tmax),
  };
  const others = readGemvTables().filter((t) => t.device !== table.device || t.smCount !== table.smCount);
  writeFileSync(tablePath, `${JSON.stringify([...others, table], null, 2)}\n`);
  console.log(`\nwrote ${entries.length} entries to ${tablePath} (${drv.info.name})`);
}
