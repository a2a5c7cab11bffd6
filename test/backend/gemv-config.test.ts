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

test('the GEMV rule splits rows only where the grid would be under two blocks per SM', () => {
  // 132 SMs (H100 SXM): 1024 rows are 128 blocks unsplit -> 4 ways; 4096 rows are 512 blocks -> unsplit.
  assert.deepEqual(gemvRule(shape(1024, 4096), 132), { split: 4, rows: 1, unroll: 4 });
  assert.deepEqual(gemvRule(shape(4096, 4096), 132), { split: 1, rows: 1, unroll: 4 });
  assert.deepEqual(gemvRule(shape(2048, 4096), 132), { split: 2, rows: 1, unroll: 4 });
  // The gated kernel has one group per output feature (gate and up rows together).
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
  assert.deepEqual(pickGemvConfig(table, shape(4096, 4096, false, 1), 132), gemvRule(shape(4096, 4096), 132));
  assert.deepEqual(pickGemvConfig(table, shape(4096, 4096, true, 2), 132), gemvRule(shape(4096, 4096, true), 132));
  assert.deepEqual(pickGemvConfig(table, shape(4096, 4096, false, 2), 114), gemvRule(shape(4096, 4096), 114));
  const file = join(mkdtempSync(join(tmpdir(), 'gemv-table-')), 't.json');
  writeFileSync(file, JSON.stringify(table));
  assert.deepEqual(readGemvTable(file), table);
  const committed = readGemvTable();
  for (const e of committed.entries) {
    assert.ok([1, 2, 4, 8].includes(e.split) && [1, 2, 4].includes(e.rows) && e.unroll > 0, JSON.stringify(e));
    assert.ok([1, 2, 4, 8].includes(e.tmax), JSON.stringify(e));
  }
});
