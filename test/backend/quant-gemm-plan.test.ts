import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  QUANT_GEMM_MAX_ROWS,
  QUANT_GEMM_TILES,
  QUANT_GEMM_TYPES,
  quantGemmCovers,
  quantGemmPartialBytes,
  quantGemmPlan,
  quantGemmServes,
  quantGemmSharedBytes,
  quantGemmTile,
  quantGemmWorkspaceBytes,
} from '../../src/backend/cuda/quant-gemm.ts';
import { QuantCudaTensor } from '../../src/backend/cuda/quant-tensor.ts';
import type { QuantType } from '../../src/primitives/ggml-types.ts';

const H100_SMS = 132;
/** The most dynamic shared memory a CTA may have on sm_90 (227 KB). */
const MAX_SHARED = 227 * 1024;

const weight = (types: QuantType[], k = 4096) =>
  new QuantCudaTensor(
    [128 * types.length, k],
    'bf16',
    types.map((type) => ({ type, rows: 128, ptr: 0n, rowBytes: 0 })),
  );

test('the fused GEMM serves 9..64 rows of the types it decodes, in 16 bits, on its route; else the dequantize path', () => {
  const w = weight(['q4_k', 'q6_k']);
  assert.deepEqual(
    [8, 9, 64, 65, 256].map((rows) => quantGemmServes('fused', rows, w, 'bf16')),
    [false, true, true, false, false],
  );
  assert.equal(QUANT_GEMM_MAX_ROWS, 64);
  assert.equal(quantGemmServes('dequantize', 64, w, 'bf16'), false, 'the switch');
  assert.equal(quantGemmServes('fused', 64, w, 'f16'), true);
  assert.equal(quantGemmServes('fused', 64, w, 'f32'), false, 'float32 has no 16-bit operands');
  // One part it does not decode sends the whole weight to the dequantize path.
  assert.equal(quantGemmServes('fused', 64, weight(['q4_k', 'q3_k']), 'bf16'), false);
  assert.deepEqual(QUANT_GEMM_TYPES, ['q8_0', 'q4_k', 'q5_k', 'q6_k']);
  assert.equal(quantGemmCovers('q8_0', 4096 + 32, 'bf16'), false, 'k in whole 256-value runs');
  assert.equal(quantGemmCovers('q8_0', 4096 + 256, 'bf16'), true);
});

test('row tiles: the smallest build that holds the rows, else 256-row tiles', () => {
  assert.deepEqual(
    [9, 16, 17, 32, 33, 64, 65, 128, 129, 256, 257, 512].map(quantGemmTile),
    [16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 256, 256],
  );
});

test("shared memory: kernels/quant_gemm.cu's layout, within a CTA's 227 KB for every type and tile", () => {
  // 256 rows of q4_k: x stages 3 x 256 rows and decoded tiles 2 x 128 rows of 144 bytes, two raw runs of 9 chunks a
  // row (144-byte blocks, 16-byte aligned), 16 bytes of slack.
  assert.equal(quantGemmSharedBytes('q4_k', 256), 2 * (3 * 256 + 2 * 128) * 72 + 2 * 128 * 144 + 16);
  // q6_k's 210-byte blocks are 2-byte aligned: 14 chunks cover one from any even offset, q8_0's run of eight 34-byte
  // blocks (272 bytes) 18; rows take an odd number (15, 19) for distinct banks.
  assert.equal(quantGemmSharedBytes('q6_k', 16), 2 * (3 * 16 + 2 * 128) * 72 + 2 * 128 * 240 + 16);
  assert.equal(quantGemmSharedBytes('q8_0', 64), 2 * (3 * 64 + 2 * 128) * 72 + 2 * 128 * 304 + 16);
  for (const type of QUANT_GEMM_TYPES)
    for (const tile of QUANT_GEMM_TILES)
      assert.ok(quantGemmSharedBytes(type, tile) <= MAX_SHARED, `${type} ${tile}: ${quantGemmSharedBytes(type, tile)}`);
});

test('Llama-3-8B shapes on an H100: tiles and K splits', () => {
  const plan = (rows: number, n: number, k: number, type: QuantType = 'q4_k') => {
    const p = quantGemmPlan(rows, n, k, type, H100_SMS);
    return `${p.tile}x${p.rowTiles}/${p.featureTiles} split ${p.split}`;
  };
  // q/k/v: 48 feature tiles; a fifth of the SMs' slots at 16 rows (two CTAs an SM) splits K five ways, 128-row tiles
  // (one an SM) two ways; at 256 rows two 128-row tiles (96 CTAs) split nothing.
  assert.deepEqual(
    [16, 64, 128, 256].map((rows) => plan(rows, 6144, 4096)),
    ['16x1/48 split 5', '64x1/48 split 5', '128x1/48 split 2', '128x2/48 split 1'],
  );
  // o and down: 32 feature tiles, split up to 8 ways; down's q6_k at 64 rows has one CTA an SM (shared memory).
  assert.deepEqual(
    [16, 64, 128, 256].map((rows) => plan(rows, 4096, 4096)),
    ['16x1/32 split 8', '64x1/32 split 8', '128x1/32 split 4', '128x2/32 split 2'],
  );
  assert.deepEqual(
    [16, 64, 256].map((rows) => plan(rows, 4096, 14336, 'q6_k')),
    ['16x1/32 split 8', '64x1/32 split 4', '128x2/32 split 2'],
  );
  // gate/up and the LM head fill the SMs unsplit; 256 rows take one 256-row tile.
  assert.deepEqual(
    [16, 256, 300].map((rows) => plan(rows, 28672, 4096)),
    ['16x1/224 split 1', '256x1/224 split 1', '256x2/224 split 1'],
  );
  assert.equal(plan(256, 128256, 4096, 'q6_k'), '256x1/1002 split 1');
  // A split is at least one 256-value run.
  assert.equal(quantGemmPlan(16, 200, 512, 'q4_k', H100_SMS).split, 2);
});

test('the workspace holds the largest split partials of any row count served; none where nothing splits', () => {
  for (const [n, k, type] of [
    [4096, 4096, 'q4_k'],
    [6144, 4096, 'q4_k'],
    [4096, 14336, 'q6_k'],
    [200, 512, 'q8_0'],
  ] as const) {
    const ws = quantGemmWorkspaceBytes(n, k, type, H100_SMS);
    let most = 0;
    for (let rows = 9; rows <= QUANT_GEMM_MAX_ROWS; rows++) {
      const bytes = quantGemmPartialBytes(quantGemmPlan(rows, n, k, type, H100_SMS), rows, n);
      assert.ok(bytes <= ws, `${n}x${k} ${type}, ${rows} rows: ${bytes} > ${ws}`);
      most = Math.max(most, bytes);
    }
    assert.equal(ws, most);
  }
  // o at 64 rows: eight splits of 64 x 4096 fp32 partials (8 MiB).
  assert.equal(quantGemmWorkspaceBytes(4096, 4096, 'q4_k', H100_SMS), 8 << 20);
  assert.equal(quantGemmWorkspaceBytes(28672, 4096, 'q4_k', H100_SMS), 0);
  assert.equal(quantGemmWorkspaceBytes(128256, 4096, 'q6_k', H100_SMS), 0);
});
