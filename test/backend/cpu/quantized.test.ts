import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { ACT_TYPE, dequantizeActivations, quantizeActivations } from '../../../src/backend/cpu/quant-act.ts';
import { QuantCpuTensor } from '../../../src/backend/cpu/quant-tensor.ts';
import { CpuTensor } from '../../../src/backend/cpu/tensor.ts';
import type { QuantType } from '../../../src/primitives/ggml-types.ts';
import type { HostTensor } from '../../../src/primitives/host-tensor.ts';
import { halfAt } from '../../../src/primitives/quant/codec.ts';
import { codecOf, dequantize, quantize } from '../../../src/primitives/quant/index.ts';
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

/**
 * ggml's quantized dot products in float64: the dequantized weight times x quantized to the weight type's 8-bit
 * activation type and dequantized again (level × d); ggml's per-block integer sums scaled by both d's are the same
 * number. For q8_1 (Q4_1, Q5_1 weights) the offsets' term is m·s, s = d·Σlevels rounded to a half: added as such.
 */
function ggmlLinear(h: HostTensor, x: Float32Array, T: number, bias: Float32Array): Float64Array {
  const type = h.dtype as QuantType;
  const [m, n] = h.shape as [number, number];
  const w = dequantize(type, h.bytes, m * n);
  const act = ACT_TYPE[type];
  const acts = quantizeActivations(act, x, T, n);
  const xq = dequantizeActivations(act, acts, T, n);
  const c = codecOf(type);
  const out = new Float64Array(T * m);
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < m; r++) {
      let sum = bias[r]!;
      for (let j = 0; j < n; j++) sum += w[r * n + j]! * xq[t * n + j]!;
      for (let b = 0; act === 'q8_1' && b < n / 32; b++) {
        let levels = 0;
        for (let j = 0; j < 32; j++) levels += acts[t * n + 32 * b + j]!;
        const [d, s] = acts.subarray(T * n + 2 * (t * (n / 32) + b));
        sum += halfAt(h.bytes, (r * (n / 32) + b) * c.blockBytes + 2) * (s! - d! * levels);
      }
      out[t * m + r] = sum;
    }
  }
  return out;
}

test('linear over quantized blocks takes the dot products of ggml with 8-bit activations, for every type', () => {
  const b = new CpuBackend({ threads: 1 });
  for (const type of TYPES) {
    // One and three tokens take dot products from the blocks, six the f32 kernel over dequantized rows.
    for (const T of [1, 3, 6]) {
      const h = quantHost(type, 24, 512, 3);
      const w = b.loadWeight(h);
      assert.ok(w instanceof QuantCpuTensor, `${type} stays in blocks`);
      assert.equal(w.byteLength, h.bytes.byteLength);
      const x = random(T * 512, 9);
      const bias = random(24, 4);
      const got = b.toHost(b.linear(new CpuTensor([T, 512], x), w, new CpuTensor([24], bias)));
      // The same integer sums, scaled and summed in float32 in another order.
      const want = Float32Array.from(ggmlLinear(h, x, T, bias));
      assert.ok(maxRelDiff(got, want) < 1e-5, `${type} T=${T}: ${maxRelDiff(got, want)}`);
      // 8-bit activations move the result by well under a percent of float activations' one.
      const floats = b.toHost(
        b.linear(new CpuTensor([T, 512], x), b.loadWeight(floatTwin(h)), new CpuTensor([24], bias)),
      );
      assert.ok(maxRelDiff(got, floats) < 0.01, `${type} T=${T}: ${maxRelDiff(got, floats)} from float activations`);
    }
  }
});

test('a packed weight of parts stored as different types computes each part with its own blocks', () => {
  const b = new CpuBackend({ threads: 1 });
  // The last part's type takes q8_1 activations where the others take q8_K.
  const parts = [
    quantHost('q4_k', 16, 256, 1, 'q'),
    quantHost('q4_k', 8, 256, 2, 'k'),
    quantHost('q6_k', 8, 256, 3, 'v'),
    quantHost('q5_1', 8, 256, 4, 'extra'),
  ];
  const w = b.loadStacked(parts);
  assert.ok(w instanceof QuantCpuTensor);
  assert.deepEqual(w.shape, [40, 256]);
  assert.deepEqual(
    w.parts.map((p) => [p.type, p.rows]),
    [
      ['q4_k', 24],
      ['q6_k', 8],
      ['q5_1', 8],
    ],
  );
  // Two tokens take dot products from the blocks, five dequantize rows for the f32 kernel.
  for (const T of [2, 5]) {
    const x = random(T * 256, 5);
    const got = b.toHost(b.linear(new CpuTensor([T, 256], x), w));
    const singles = parts.map((p) => ggmlLinear(p, x, T, new Float32Array(p.shape[0]!)));
    for (let t = 0; t < T; t++) {
      const row = Float32Array.from(
        singles.flatMap((o, i) => [...o.subarray(t * parts[i]!.shape[0]!, (t + 1) * parts[i]!.shape[0]!)]),
      );
      assert.ok(maxRelDiff(got.subarray(t * 40, t * 40 + 40), row) < 1e-5, `T=${T} t=${t}`);
    }
  }
});

test('quantized linear split over worker threads gives exactly the single-thread result', () => {
  const one = new CpuBackend({ threads: 1 });
  const three = new CpuBackend({ threads: 3 });
  // Parts of two activation types (q8_K, q8_0): each job reads its own quantized input.
  const parts = [
    quantHost('q4_k', 200, 1024, 1, 'q'),
    quantHost('q6_k', 136, 1024, 2, 'v'),
    quantHost('q4_0', 64, 1024, 3, 'o'),
  ];
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
