import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { QuantCpuTensor } from '../../../src/backend/cpu/quant-tensor.ts';
import { CpuTensor } from '../../../src/backend/cpu/tensor.ts';
import type { QuantType } from '../../../src/primitives/ggml-types.ts';
import type { HostTensor } from '../../../src/primitives/host-tensor.ts';
import { dequantize, quantize } from '../../../src/primitives/quant/index.ts';
import { buildStepBatch } from '../../../src/runner/step-batch.ts';
import { mulberry32 } from '../../../src/util/random.ts';

const TYPES: QuantType[] = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'];

function random(n: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: n }, () => rnd() - 0.5);
}

function quantHost(type: QuantType, rows: number, cols: number, seed: number, name = 'w'): HostTensor {
  return { name, shape: [rows, cols], dtype: type, bytes: quantize(type, random(rows * cols, seed)) };
}

/** The same weight dequantized to float32: what the blocks mean, computed by the f32 path. */
function floatTwin(h: HostTensor): HostTensor {
  const values = dequantize(h.dtype as QuantType, h.bytes, h.shape[0]! * h.shape[1]!);
  return { ...h, dtype: 'f32', bytes: new Uint8Array(values.buffer) };
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return worst / scale;
}

test('linear over quantized blocks matches linear over the dequantized float weight, for every type', () => {
  const b = new CpuBackend({ threads: 1 });
  for (const type of TYPES) {
    for (const T of [1, 3, 6]) {
      const h = quantHost(type, 24, 512, 3);
      const w = b.loadWeight(h);
      assert.ok(w instanceof QuantCpuTensor, `${type} stays in blocks`);
      assert.equal(w.byteLength, h.bytes.byteLength);
      const x = new CpuTensor([T, 512], random(T * 512, 9));
      const bias = new CpuTensor([24], random(24, 4));
      const got = b.toHost(b.linear(x, w, bias));
      const want = b.toHost(b.linear(x, b.loadWeight(floatTwin(h)), bias));
      // Same products, summed in another order (per block, offsets through x's sums): float32 rounding apart.
      assert.ok(maxRelDiff(got, want) < 1e-5, `${type} T=${T}: ${maxRelDiff(got, want)}`);
    }
  }
});

test('a packed weight of parts stored as different types computes each part with its own blocks', () => {
  const b = new CpuBackend({ threads: 1 });
  const parts = [
    quantHost('q4_k', 16, 256, 1, 'q'),
    quantHost('q4_k', 8, 256, 2, 'k'),
    quantHost('q6_k', 8, 256, 3, 'v'),
  ];
  const w = b.loadStacked(parts);
  assert.ok(w instanceof QuantCpuTensor);
  assert.deepEqual(w.shape, [32, 256]);
  assert.deepEqual(
    w.parts.map((p) => [p.type, p.rows]),
    [
      ['q4_k', 24],
      ['q6_k', 8],
    ],
  );
  // Two tokens take dot products from the blocks, five dequantize rows for the f32 kernel.
  for (const T of [2, 5]) {
    const x = new CpuTensor([T, 256], random(T * 256, 5));
    const got = b.toHost(b.linear(x, w));
    const twins = parts.map((p) => b.toHost(b.linear(x, b.loadWeight(floatTwin(p)))));
    for (let t = 0; t < T; t++) {
      const row = Float32Array.from([
        ...twins[0]!.subarray(t * 16, t * 16 + 16),
        ...twins[1]!.subarray(t * 8, t * 8 + 8),
        ...twins[2]!.subarray(t * 8, t * 8 + 8),
      ]);
      assert.ok(maxRelDiff(got.subarray(t * 32, t * 32 + 32), row) < 1e-5, `T=${T} t=${t}`);
    }
  }
});

test('quantized linear split over worker threads gives exactly the single-thread result', () => {
  const one = new CpuBackend({ threads: 1 });
  const three = new CpuBackend({ threads: 3 });
  const parts = [quantHost('q4_k', 200, 1024, 1, 'q'), quantHost('q6_k', 136, 1024, 2, 'v')];
  for (const T of [2, 5]) {
    const x = new CpuTensor([T, 1024], random(T * 1024, 8));
    const want = one.toHost(one.linear(x, one.loadStacked(parts)));
    const w3 = three.loadStacked(parts);
    for (let r = 0; r < 2; r++) assert.deepEqual(three.toHost(three.linear(x, w3)), want, `T=${T}`);
  }
});

test('embedding rows of a quantized table are dequantized as gathered; 1-D quantized weights load as float', () => {
  const b = new CpuBackend({ threads: 1 });
  const h = quantHost('q5_k', 6, 256, 11);
  const rows = dequantize('q5_k', h.bytes, 6 * 256);
  const batch = buildStepBatch([{ tokenIds: [4, 0, 4], startPos: 0, blockTable: [0], logits: 'last' }], 4);
  const got = b.toHost(b.embedding(b.loadWeight(h), b.beginStep(batch), 'tokens'));
  assert.deepEqual(
    got,
    Float32Array.from([...rows.subarray(1024, 1280), ...rows.subarray(0, 256), ...rows.subarray(1024, 1280)]),
  );
  const norm = b.loadWeight({ name: 'norm', shape: [256], dtype: 'q8_0', bytes: quantize('q8_0', random(256, 2)) });
  assert.ok(norm instanceof CpuTensor);
  assert.throws(
    () => b.rmsNorm(new CpuTensor([1, 256], random(256, 1)), b.loadWeight(h), 1e-5),
    /quantized weight serves linear\(\) and embedding\(\) only/,
  );
});
