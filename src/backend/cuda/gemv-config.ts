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
}

/** One GEMV launch: `m` output features (gated: the weight has 2m rows), K = `k`, `tmax` = rows of x rounded up. */
export interface GemvShape {
  m: number;
  k: number;
  gated: boolean;
  tmax: number;
}

export interface GemvTableEntry extends GemvShape, GemvConfig {}

/** The measured best configuration per shape for one device (bench/gemv-sweep.ts writes it). */
export interface GemvTable {
  device: string;
  smCount: number;
  measured: string;
  entries: GemvTableEntry[];
}

const WARPS = 8;

/** The file the sweep writes and the backend reads. */
export const GEMV_TABLE_PATH = join(dirname(fileURLToPath(import.meta.url)), 'gemv-table.json');

export function readGemvTable(path = GEMV_TABLE_PATH): GemvTable {
  return JSON.parse(readFileSync(path, 'utf8')) as GemvTable;
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
 * Shapes the table does not name: one row per warp, unroll 4, and narrow outputs (fewer than two blocks per SM)
 * split each row over 2-4 warps: 1024 x 4096 read at 1.13 TB/s split 4 ways against 0.82 unsplit on an H100, while
 * splitting 4096-wide outputs lost ~3 % (bench/NOTES.md run 5).
 */
export function gemvRule(shape: GemvShape, smCount: number): GemvConfig {
  const cfg = { split: 1, rows: 1, unroll: 4 };
  while (cfg.split < 4 && gemvBlocks(shape, cfg) < 2 * smCount) cfg.split *= 2;
  return cfg;
}

/** The table's entry for this shape when it was measured on a device with this many SMs, else `gemvRule`. */
export function pickGemvConfig(table: GemvTable, shape: GemvShape, smCount: number): GemvConfig {
  if (table.smCount === smCount) {
    const e = table.entries.find(
      (e) => e.m === shape.m && e.k === shape.k && e.gated === shape.gated && e.tmax === shape.tmax,
    );
    if (e) return { split: e.split, rows: e.rows, unroll: e.unroll };
  }
  return gemvRule(shape, smCount);
}
