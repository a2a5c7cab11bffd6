import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocPlane, writeRows } from '../../src/backend/cpu/kv-store.ts';
import {
  DECODE_HD256,
  DECODE_WIDE_TILES,
  DEFAULT_DECODE,
  DEFAULT_PREFILL,
  decodeCtasPerSm,
  decodeSharedBytes,
  decodesQuantInRegisters,
  defaultConfigs,
  prefillSharedBytes,
} from '../../src/backend/cuda/flash-sizing.ts';
import {
  kvBlockBytesOf,
  kvPlaneOffsets,
  q8PlanesOf,
  slotBytes,
  tilesReadQuant,
} from '../../src/backend/cuda/kv-layout.ts';
import { HALF } from '../../src/primitives/quant/codec.ts';
import { Q8_0 } from '../../src/primitives/quant/legacy.ts';

// GQA 32/8, head 128: the shape of issue #18's decode benchmark.
const shape = { numLayers: 32, blockSize: 16, numKvHeads: 8, headDim: 128 };

test('a quantized block takes one byte a value, q8_0 a half more per 32 values: about 2x and 1.88x the bf16 tokens', () => {
  const bf16 = kvBlockBytesOf(shape, undefined, 2);
  assert.equal(bf16, 2 * 32 * 16 * 8 * 128 * 2);
  assert.equal(kvBlockBytesOf(shape, 'fp8', 2), bf16 / 2);
  assert.equal(kvBlockBytesOf(shape, 'q8_0', 2), (bf16 / 2) * (34 / 32));
  assert.equal((bf16 / kvBlockBytesOf(shape, 'q8_0', 2)).toFixed(2), '1.88');
  assert.deepEqual(slotBytes('q8_0', 1024, 2), { values: 1024, scales: 64 });
  assert.deepEqual(slotBytes('fp8', 1024, 2), { values: 1024, scales: 0 });
  assert.deepEqual(slotBytes(undefined, 1024, 4), { values: 4096, scales: 0 });
});

test("each layer's planes are disjoint, 256-byte aligned and inside the one allocation", () => {
  for (const quant of [undefined, 'fp8', 'q8_0'] as const) {
    const spec = { numLayers: 3, numBlocks: 5, blockSize: 16, numKvHeads: 2, headDim: 48 };
    const p = kvPlaneOffsets(spec, quant, 2);
    const slots = 5 * 16;
    const per = slotBytes(quant, 96, 2);
    const ranges: [number, number][] = [];
    for (const l of p.layers) {
      ranges.push([l.k, l.k + slots * per.values], [l.v, l.v + slots * per.values]);
      if (per.scales)
        ranges.push([l.kScales, l.kScales + slots * per.scales], [l.vScales, l.vScales + slots * per.scales]);
    }
    ranges.sort((a, b) => a[0] - b[0]);
    for (let i = 0; i < ranges.length; i++) {
      assert.equal(ranges[i]![0] % 256, 0, `${quant} plane ${i} aligned`);
      if (i > 0) assert.ok(ranges[i]![0] >= ranges[i - 1]![1], `${quant} planes ${i - 1} and ${i} overlap`);
    }
    assert.ok(ranges.at(-1)![1] <= p.totalBytes);
    assert.equal(p.totalBytes % 4, 0, 'the poison fill writes 32-bit words');
  }
});

test("q8PlanesOf splits the CPU twin's q8_0 rows into the values and scales planes, decoding to the same values", () => {
  const row = 64;
  const slots = 3;
  const src = Float32Array.from({ length: slots * row }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
  const plane = allocPlane('q8_0', slots, row, false);
  writeRows(plane, src, Int32Array.from([0, 1, 2]), row);
  const { values, scales } = q8PlanesOf(plane.data as Uint8Array, slots, row);
  assert.equal(values.length, slots * row);
  assert.equal(scales.length, (slots * row) / 32);
  const cpu = new Float32Array(32);
  for (let b = 0; b < (slots * row) / 32; b++) {
    Q8_0.dequantizeBlock(plane.data as Uint8Array, b * 34, cpu, 0);
    for (let j = 0; j < 32; j++) {
      const gpu = ((values[b * 32 + j]! << 24) >> 24) * HALF[scales[b]!]!;
      assert.equal(gpu, cpu[j], `block ${b} value ${j}`);
    }
  }
});

test("the kernels' shared memory: the 16-bit sizes by hand, quantized caches within the 227 KB a CTA may use", () => {
  // The bf16 cache's sizes: the default decode tiles (16 keys, three deep) and the 32-key tiles, two deep.
  assert.equal(decodeSharedBytes(128, DEFAULT_DECODE), (16 + 4 * 3 * 2 * 16) * 136 * 2);
  assert.equal(decodeSharedBytes(128, DECODE_WIDE_TILES), (16 + 4 * 2 * 2 * 32) * 136 * 2);
  assert.equal(prefillSharedBytes(128, DEFAULT_PREFILL), (16 * 8 * 2 + 4 * 64) * 136 * 2 + 2 * 4 * 4);
  for (const quant of ['fp8', 'q8_0'] as const) {
    for (const d of [64, 80, 96, 128, 256]) {
      // The defaults a quantized cache runs with (16-key tiles, three in flight, below head size 256, but 32-key
      // tiles at head size 80), and the 16-bit defaults, which the sweeps also run over quantized caches.
      for (const { decode, prefill } of [defaultConfigs(d, quant), defaultConfigs(d)]) {
        assert.ok(decodeSharedBytes(d, decode, quant) <= 227 * 1024, `${quant} decode hd${d}`);
        assert.ok(prefillSharedBytes(d, prefill, quant) <= 227 * 1024, `${quant} prefill hd${d}`);
        // The decode warp merge reuses the ring: each warp's region must hold 16 rows of D + 4 floats and 16 (m, l)
        // pairs.
        const perWarp = (decodeSharedBytes(d, decode, quant) - 16 * (d + 8) * 2) / decode.warps;
        assert.ok(perWarp >= (16 * (d + 4) + 32) * 4, `${quant} decode hd${d} merge fits`);
      }
    }
    for (const d of [64, 80, 96, 128]) assert.deepEqual(defaultConfigs(d, quant).decode, DECODE_WIDE_TILES, `${d}`);
    assert.deepEqual(defaultConfigs(256, quant).decode, DECODE_HD256);
  }
  assert.deepEqual(defaultConfigs(128).decode, DEFAULT_DECODE);
  assert.deepEqual(defaultConfigs(80).decode, DEFAULT_DECODE, 'a 16-bit tile of head size 80 splits evenly');
  // By hand: the query tile, then per warp 2 stages x (K, V) x 32 rows of D + 16 bytes, for q8_0 and each row's
  // scales; at head sizes 64, 128 and 256 the bytes go straight into fragments, elsewhere (fp8 at 96) the warp also
  // has one dequantized 16-bit tile.
  assert.equal(decodeSharedBytes(128, DECODE_WIDE_TILES, 'fp8'), 16 * 136 * 2 + 4 * 2 * 2 * 32 * 144);
  assert.equal(decodeSharedBytes(128, DECODE_WIDE_TILES, 'q8_0'), 16 * 136 * 2 + 4 * 2 * 2 * 32 * (144 + 8));
  assert.equal(decodeSharedBytes(96, DECODE_WIDE_TILES, 'fp8'), 16 * 104 * 2 + 4 * (2 * 2 * 32 * 112 + 32 * 104 * 2));
  for (const quant of ['fp8', 'q8_0'] as const)
    assert.deepEqual(
      [64, 80, 96, 128, 256].map((d) => decodesQuantInRegisters(d, quant)),
      [true, false, false, true, true],
    );
  assert.equal(decodesQuantInRegisters(128), false);
  // Occupancy: 16-key rings of fp8 or q8_0 bytes leave room for three CTAs in shared memory; three fp8 CTAs of 164
  // registers (allocated as 168) fit an SM's 65,536, two of q8_0's 178 (184). The 16-bit cache's rings fit two.
  assert.equal(decodeCtasPerSm(128, DEFAULT_DECODE, 'fp8'), 3);
  assert.equal(decodeCtasPerSm(128, DEFAULT_DECODE, 'q8_0'), 2);
  assert.equal(decodeCtasPerSm(128, DEFAULT_DECODE), 2);
  assert.equal(decodeCtasPerSm(128, DECODE_WIDE_TILES, 'fp8'), 2);
});

test("the tensor-core kernels read fp8 heads of every size they are built for, q8_0's only in whole 64-value heads", () => {
  for (const d of [64, 80, 96, 128, 256]) {
    assert.equal(tilesReadQuant(undefined, d), true);
    assert.equal(tilesReadQuant('fp8', d), true);
    assert.equal(tilesReadQuant('q8_0', d), d % 64 === 0, `q8_0 head ${d}`);
  }
});
