import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  type GemvTable,
  gemvBlocks,
  gemvRule,
  pickGemvConfig,
  readGemvTable,
} from '../../src/backend/cuda/gemv-config.ts';

const shape = (m: number, k: number, gated = false, tmax = 1) => ({ m, k, gated, tmax });

test('the GEMV rule: 8 warps per row group at 1-2 rows or a wide K, else 4; two weight rows per warp', () => {
  assert.deepEqual(gemvRule(shape(4096, 4096)), { split: 8, rows: 2, unroll: 4 });
  assert.deepEqual(gemvRule(shape(4096, 4096, false, 2)), { split: 8, rows: 2, unroll: 4 });
  assert.deepEqual(gemvRule(shape(4096, 4096, false, 4)), { split: 4, rows: 2, unroll: 4 });
  assert.deepEqual(gemvRule(shape(4096, 14336, false, 8)), { split: 8, rows: 2, unroll: 4 });
  assert.deepEqual(gemvRule(shape(14336, 4096, true, 8)), { split: 4, rows: 1, unroll: 4 });
  // The gated kernel has one group per output feature (gate and up rows together); a ragged last group counts.
  assert.equal(gemvBlocks(shape(14336, 4096, true), { split: 1, rows: 1, unroll: 4 }), 1792);
  assert.equal(gemvBlocks(shape(4099, 4096), { split: 2, rows: 4, unroll: 4 }), 257);
});

test('a measured table entry wins for its shape and SM count only; the committed table parses', () => {
  const table: GemvTable = {
    device: 'test',
    smCount: 132,
    measured: 'test',
    entries: [{ ...shape(4096, 4096, false, 2), split: 2, rows: 2, unroll: 8 }],
  };
  assert.deepEqual(pickGemvConfig(table, shape(4096, 4096, false, 2), 132), { split: 2, rows: 2, unroll: 8 });
  assert.deepEqual(pickGemvConfig(table, shape(4096, 4096, false, 1), 132), gemvRule(shape(4096, 4096)));
  assert.deepEqual(pickGemvConfig(table, shape(4096, 4096, true, 2), 132), gemvRule(shape(4096, 4096, true, 2)));
  assert.deepEqual(pickGemvConfig(table, shape(4096, 4096, false, 2), 114), gemvRule(shape(4096, 4096, false, 2)));
  const file = join(mkdtempSync(join(tmpdir(), 'gemv-table-')), 't.json');
  writeFileSync(file, JSON.stringify(table));
  assert.deepEqual(readGemvTable(file), table);
  // The committed table names every Llama-3-8B decode shape at 1, 2, 4 and 8 rows.
  const committed = readGemvTable();
  assert.equal(committed.entries.length, 24);
  for (const e of committed.entries) {
    assert.ok([1, 2, 4, 8].includes(e.split) && [1, 2, 4].includes(e.rows) && e.unroll > 0, JSON.stringify(e));
    assert.ok([1, 2, 4, 8].includes(e.tmax), JSON.stringify(e));
  }
});
