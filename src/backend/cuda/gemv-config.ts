import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compile-time choices of one decode GEMV (kernels/gemv.cu: SPLIT, ROWS, UNROLL). */
export interface GemvConfig {
  /** Warps sharing one group's weight rows (partial sums meet in shared memory). */
  split: number;
  /** Weight rows a warp group reads together (ignored by the gated kernel: always gate + up). */
  rows: number;
  /** Unroll of the loop over K. */
  unroll: number;
  /** Weight loads past L1 (kernels/gemv.cu WSTREAM); absent: through the read-only path. */
  stream?: boolean;
}

/** One GEMV launch: `m` output features (gated: the weight has 2m rows), K = `k`, `tmax` = rows of x rounded up. */
export interface GemvShape {
  m: number;
  k: number;
  gated: boolean;
  tmax: number;
}

export interface GemvTableEntry extends GemvShape, GemvConfig {
  /** The entry's time and cuBLASLt's for the same product, us per launch (gemvWins picks the faster). */
  us?: number;
  cublasltUs?: number;
}

/**
 * The measured best configuration per shape for one device (bench/gemv-sweep.ts writes it; gemv-table.json holds one
 * per card measured). An entry with both times also picks GEMV or cuBLASLt; a shape without them takes the GEMV up to
 * `GEMV_RULE_ROWS` rows.
 */
export interface GemvTable {
  device: string;
  smCount: number;
  measured: string;
  entries: GemvTableEntry[];
}

const WARPS = 8;

/**
 * Rows of x a shape the table does not time takes through the GEMV. The H100 sweep (bench/RESULTS.md, 2026-11-26):
 * the GEMV wins by 7-33 % at 1-2 rows on every Llama-3-8B shape, is within 5 % of cuBLASLt at 4 and loses by
 * 27-73 % at 8.
 */
export const GEMV_RULE_ROWS = 4;
/** The largest TMAX kernels/gemv.cu is built for (its accumulators are TMAX x ROWS floats per thread). */
export const GEMV_MAX_ROWS = 32;

/** The GEMV shape of `T` rows of x against `m` output features of K = `k` (TMAX: `T` rounded up to a power of 2). */
export function gemvShape(T: number, m: number, k: number, gated: boolean): GemvShape {
  return { m, k, gated, tmax: 2 ** Math.ceil(Math.log2(T)) };
}

/** The file the sweep writes and the backend reads: a table per card. */
export const GEMV_TABLE_PATH = join(dirname(fileURLToPath(import.meta.url)), 'gemv-table.json');

export function readGemvTables(path = GEMV_TABLE_PATH): GemvTable[] {
  return JSON.parse(readFileSync(path, 'utf8')) as GemvTable[];
}

/** The table measured on `device` (its name and SM count), or an empty one for it: every shape then takes the rule. */
export function readGemvTable(device: GemvDevice, path = GEMV_TABLE_PATH): GemvTable {
  const measured = readGemvTables(path).find((t) => t.device === device.name && t.smCount === device.smCount);
  return measured ?? { device: device.name, smCount: device.smCount, measured: 'never', entries: [] };
}

/** Weight-row groups (one per warp when unsplit) a shape has. */
export function gemvGroups(shape: GemvShape, cfg: GemvConfig): number {
  return shape.gated ? shape.m : Math.ceil(shape.m / cfg.rows);
}

/** Blocks of the launch (8 warps each). */
export function gemvBlocks(shape: GemvShape, cfg: GemvConfig): number {
  return Math.ceil((gemvGroups(shape, cfg) * cfg.split) / WARPS);
}

/**
 * Shapes the table does not name. One row of x (bench/gemv-sweep.ts --models on Phi-4-mini's and Gemma-2-9B's shapes,
 * H100, bench/RESULTS.md 2026-12-06): each weight row over 8 warps, one row per warp, unrolled twice, loaded past L1,
 * was the best or within 0.1 % of it on all eight plain shapes (the earlier rule, 2 rows per warp unrolled four times
 * through L1, 2-17 % slower), and through L1 within 2.1 % on both gated ones. More rows of x, from the H100 sweep of
 * 2026-11-26 with PDL: 8 warps at 2 rows (4 above, 8 again for K > 8192), 2 weight rows per warp, within 5 % of every
 * Llama-3-8B shape's best but one (down at 8 rows, 18 %).
 */
export function gemvRule(shape: GemvShape): GemvConfig {
  if (shape.tmax === 1) return { split: 8, rows: 1, unroll: 2, ...(!shape.gated && { stream: true }) };
  return { split: shape.tmax <= 2 || shape.k > 8192 ? 8 : 4, rows: shape.gated ? 1 : 2, unroll: 4 };
}

/**
 * The CUDA-core FP8 GEMV's build (gemv.cu WFP8: a lane's vector is 16 weights, so a row of K = 4096 is 4 KB, half the
 * bf16 GEMV's): the bf16 rule's split scaled to the FP8 row, each warp's share of a row as long as the bf16 GEMV's
 * at one row of x (8 warps over K above 8192, else 4), two weight rows per warp. A guess until bench/fp8-gemv.ts
 * has swept it on the device.
 */
export function fp8CudaCoreGemvRule(shape: GemvShape): GemvConfig {
  return { split: shape.k > 8192 ? 8 : 4, rows: shape.gated ? 1 : 2, unroll: 4 };
}

/** The card a table was measured on: its name and SM count must both match for an entry to apply. */
export interface GemvDevice {
  name: string;
  smCount: number;
}

const entryFor = (table: GemvTable, shape: GemvShape, device: GemvDevice) =>
  table.device === device.name && table.smCount === device.smCount
    ? table.entries.find((e) => e.m === shape.m && e.k === shape.k && e.gated === shape.gated && e.tmax === shape.tmax)
    : undefined;

/**
 * Whether this shape goes through the GEMV rather than cuBLASLt: where its entry timed both, the faster; otherwise
 * up to `GEMV_RULE_ROWS` rows (never above `GEMV_MAX_ROWS`).
 */
export function gemvWins(table: GemvTable, shape: GemvShape, device: GemvDevice): boolean {
  if (shape.tmax > GEMV_MAX_ROWS) return false;
  const e = entryFor(table, shape, device);
  if (e?.us !== undefined && e.cublasltUs !== undefined) return e.us < e.cublasltUs;
  return shape.tmax <= GEMV_RULE_ROWS;
}

/**
 * The table's entry for this shape when it was measured on a device with this many SMs, else `gemvRule`. Measured in
 * bf16; fp16 reads the same bytes, f32 (tests, not a serving type) twice as many, untimed.
 */
export function pickGemvConfig(table: GemvTable, shape: GemvShape, device: GemvDevice): GemvConfig {
  const e = entryFor(table, shape, device);
  return e ? { split: e.split, rows: e.rows, unroll: e.unroll, ...(e.stream && { stream: true }) } : gemvRule(shape);
}
