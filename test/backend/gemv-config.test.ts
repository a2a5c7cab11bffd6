import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  GEMV_MAX_ROWS,
  GEMV_RULE_ROWS,
  type GemvTable,
  gemvBlocks,
  gemvRule,
  gemvShape,
  gemvWins,
  pickGemvConfig,
  readGemvTable,
  readGemvTables,
} from '../../src/backend/cuda/gemv-config.ts';

const shape = (m: number, k: number, gated = false, tmax = 1) => ({ m, k, gated, tmax });
/** The test tables' card, and one with another SM count. */
const H100 = { name: 'test', smCount: 132 };
const OTHER = { name: 'test', smCount: 114 };

test('the GEMV rule: at one row 8 warps, one weight row each, streamed past L1 (not gated); above, 8 warps per row group at 2 rows or a wide K, else 4, two weight rows per warp', () => {
  assert.deepEqual(gemvRule(shape(4096, 4096)), { split: 8, rows: 1, unroll: 2, stream: true });
  assert.deepEqual(gemvRule(shape(14336, 4096, true)), { split: 8, rows: 1, unroll: 2 });
  assert.deepEqual(gemvRule(shape(4096, 4096, false, 2)), { split: 8, rows: 2, unroll: 4 });
  assert.deepEqual(gemvRule(shape(4096, 4096, false, 4)), { split: 4, rows: 2, unroll: 4 });
  assert.deepEqual(gemvRule(shape(4096, 14336, false, 8)), { split: 8, rows: 2, unroll: 4 });
  assert.deepEqual(gemvRule(shape(14336, 4096, true, 8)), { split: 4, rows: 1, unroll: 4 });
  // The gated kernel has one group per output feature (gate and up rows together); a ragged last group counts.
  assert.equal(gemvBlocks(shape(14336, 4096, true), { split: 1, rows: 1, unroll: 4 }), 1792);
  assert.equal(gemvBlocks(shape(4099, 4096), { split: 2, rows: 4, unroll: 4 }), 257);
});

test('a measured table entry wins for its shape and SM count only; a table per card; the committed tables parse', () => {
  const table: GemvTable = {
    device: 'test',
    smCount: 132,
    measured: 'test',
    entries: [{ ...shape(4096, 4096, false, 2), split: 2, rows: 2, unroll: 8 }],
  };
  assert.deepEqual(pickGemvConfig(table, shape(4096, 4096, false, 2), H100), { split: 2, rows: 2, unroll: 8 });
  assert.deepEqual(pickGemvConfig(table, shape(4096, 4096, false, 1), H100), gemvRule(shape(4096, 4096)));
  assert.deepEqual(pickGemvConfig(table, shape(4096, 4096, true, 2), H100), gemvRule(shape(4096, 4096, true, 2)));
  assert.deepEqual(pickGemvConfig(table, shape(4096, 4096, false, 2), OTHER), gemvRule(shape(4096, 4096, false, 2)));
  const sameSms = { name: 'another card', smCount: 132 };
  assert.deepEqual(pickGemvConfig(table, shape(4096, 4096, false, 2), sameSms), gemvRule(shape(4096, 4096, false, 2)));
  // A file of two cards' tables: each card reads its own; a card without one gets an empty table (the rule).
  const other: GemvTable = { ...table, device: 'another card', entries: [] };
  const file = join(mkdtempSync(join(tmpdir(), 'gemv-table-')), 't.json');
  writeFileSync(file, JSON.stringify([other, table]));
  assert.deepEqual(readGemvTables(file), [other, table]);
  assert.deepEqual(readGemvTable(H100, file), table);
  assert.deepEqual(readGemvTable(OTHER, file).entries, []);
  assert.deepEqual(
    pickGemvConfig(readGemvTable(OTHER, file), shape(4096, 4096, false, 2), OTHER),
    gemvRule(shape(4096, 4096, false, 2)),
  );
  // The committed H100 table names every Llama-3-8B decode shape at 1, 2, 4 and 8 rows (and some at 16 and 32), and
  // Phi-4-mini's and Gemma-2-9B's five at one row, each with the GEMV's and cuBLASLt's measured times.
  const committed = readGemvTable({ name: 'NVIDIA H100 80GB HBM3', smCount: 132 });
  assert.equal(committed.entries.filter((e) => e.tmax <= 8).length, 24 + 10);
  for (const t of readGemvTables())
    for (const e of t.entries) {
      assert.ok([1, 2, 4, 8].includes(e.split) && [1, 2, 4].includes(e.rows) && e.unroll > 0, JSON.stringify(e));
      assert.ok([1, 2, 4, 8, 16, 32].includes(e.tmax), JSON.stringify(e));
      assert.ok(e.us! > 0 && e.cublasltUs! > 0, JSON.stringify(e));
    }
});

test(`where an entry timed both the faster of GEMV and cuBLASLt runs; untimed, the GEMV up to ${GEMV_RULE_ROWS} rows`, () => {
  const entry = { ...gemvShape(16, 6144, 4096, false), split: 4, rows: 2, unroll: 4, us: 40, cublasltUs: 50 };
  const slower = { ...gemvShape(32, 6144, 4096, false), split: 4, rows: 2, unroll: 4, us: 90, cublasltUs: 60 };
  const untimed = { ...gemvShape(16, 4096, 4096, true), split: 4, rows: 1, unroll: 4 };
  const lost8 = { ...gemvShape(8, 4096, 14336, false), split: 8, rows: 1, unroll: 4, us: 78, cublasltUs: 45 };
  const table: GemvTable = { device: 'test', smCount: 132, measured: 'test', entries: [entry, slower, untimed, lost8] };
  assert.equal(gemvWins(table, gemvShape(5, 4096, 14336, false), H100), false, 'cuBLASLt measured faster at 8 rows');
  assert.equal(gemvWins(table, gemvShape(3, 4096, 14336, false), OTHER), true, 'another device: the rule');
  assert.equal(gemvWins(table, gemvShape(5, 4096, 14336, false), OTHER), false, 'the rule stops at 4 rows');
  assert.equal(gemvWins(table, gemvShape(32, 6144, 4096, false), H100), false, 'cuBLASLt measured faster');
  assert.equal(gemvWins(table, gemvShape(16, 4096, 4096, true), H100), false, 'no times');
  assert.equal(gemvWins(table, gemvShape(2, 4096, 4096, true), H100), true, 'up to 4 rows: the GEMV, named or not');
  assert.deepEqual(gemvShape(9, 6144, 4096, false), { m: 6144, k: 4096, gated: false, tmax: 16 });
  assert.equal(gemvWins(table, gemvShape(4, 4096, 4096, false), H100), true);
  assert.equal(gemvWins(table, gemvShape(8, 4096, 4096, false), H100), false);
  assert.equal(gemvWins(table, gemvShape(9, 6144, 4096, false), H100), true);
  assert.equal(gemvWins(table, gemvShape(16, 6144, 4096, false), H100), true);
  assert.equal(gemvWins(table, gemvShape(16, 6144, 4096, false), OTHER), false);
  assert.equal(gemvWins(table, gemvShape(16, 6144, 4096, true), H100), false);
  assert.equal(gemvWins(table, gemvShape(17, 6144, 4096, false), H100), false);
  assert.equal(gemvWins(table, gemvShape(16, 4096, 4096, false), H100), false);
  const big = { ...table, entries: [{ ...entry, tmax: 64 }] };
  assert.equal(gemvWins(big, gemvShape(64, 6144, 4096, false), H100), false, `TMAX above ${GEMV_MAX_ROWS}`);
  assert.deepEqual(pickGemvConfig(table, gemvShape(12, 6144, 4096, false), H100), { split: 4, rows: 2, unroll: 4 });
});
