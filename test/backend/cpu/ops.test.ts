import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { erf } from '../../../src/backend/cpu/elementwise.ts';
import { CpuTensor, cpu as cpuData } from '../../../src/backend/cpu/tensor.ts';
import type { RopeSpec } from '../../../src/backend/rope-spec.ts';
import { buildStepBatch } from '../../../src/runner/step-batch.ts';
import { maxAbsDiff } from '../../helpers/paged-session.ts';

const b = new CpuBackend();
const t = (shape: number[], values: ArrayLike<number>) => new CpuTensor(shape, Float32Array.from(values));
const seq = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

test('linear matches a plain triple loop for shapes that are not multiples of the unroll', () => {
  for (const [T, n, m] of [
    [1, 13, 7],
    [3, 16, 9],
    [5, 3, 4],
    [2, 64, 130],
  ] as const) {
    const x = seq(T * n, (i) => Math.sin(i * 0.7));
    const w = seq(m * n, (i) => Math.cos(i * 0.3));
    const bias = seq(m, (i) => i * 0.1 - 0.2);
    const want = seq(T * m, (r) => {
      const [tt, o] = [Math.floor(r / m), r % m];
      let s = bias[o]!;
      for (let i = 0; i < n; i++) s += x[tt * n + i]! * w[o * n + i]!;
      return s;
    });
    const got = b.linear(t([T, n], x), t([m, n], w), t([m], bias));
    assert.deepEqual(got.shape, [T, m]);
    assert.ok(maxAbsDiff(b.toHost(got), want) < 1e-5, `[${T}, ${n}] x [${m}, ${n}]`);
    const noBias = b.toHost(b.linear(t([T, n], x), t([m, n], w)));
    assert.ok(
      maxAbsDiff(
        noBias,
        want.map((v, r) => v - bias[r % m]!),
      ) < 1e-5,
    );
  }
});

test('rmsNorm, addRmsNorm and layerNorm follow their formulas', () => {
  const x = [1, 2, 3, 4, -1, 0, 1, 2];
  const w = [1, 0.5, 2, 1];
  const eps = 1e-5;
  const rms = (r: number[]) => Math.sqrt(r.reduce((a, v) => a + v * v, 0) / 4 + eps);
  const want = [0, 1].flatMap((r) => {
    const row = x.slice(r * 4, r * 4 + 4);
    return row.map((v, i) => (v / rms(row)) * w[i]!);
  });
  assert.ok(maxAbsDiff(b.toHost(b.rmsNorm(t([2, 4], x), t([4], w), eps)), want) < 1e-6);

  const residual = t(
    [2, 4],
    seq(8, () => 0.5),
  );
  const { out, residual: updated } = b.addRmsNorm(
    t(
      [2, 4],
      x.map((v) => v - 0.5),
    ),
    residual,
    t([4], w),
    eps,
  );
  assert.ok(maxAbsDiff(b.toHost(updated), x) < 1e-6, 'residual holds x + residual');
  assert.ok(maxAbsDiff(b.toHost(out), want) < 1e-6);

  const bias = [0.1, 0.2, 0.3, 0.4];
  const ln = [0, 1].flatMap((r) => {
    const row = x.slice(r * 4, r * 4 + 4);
    const mean = row.reduce((a, v) => a + v, 0) / 4;
    const sd = Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / 4 + eps);
    return row.map((v, i) => ((v - mean) / sd) * w[i]! + bias[i]!);
  });
  assert.ok(maxAbsDiff(b.toHost(b.layerNorm(t([2, 4], x), t([4], w), t([4], bias), eps)), ln) < 1e-6);

  // Gemma's (1 + w), the sum rounded to float32 as transformers adds it: 1 + 2^-30 is 1.
  const wg = [0.5, -0.25, 2 ** -30, 1.5];
  const gemma = [0, 1].flatMap((r) => {
    const row = x.slice(r * 4, r * 4 + 4);
    return row.map((v, i) => (v / rms(row)) * Math.fround(1 + wg[i]!));
  });
  assert.ok(maxAbsDiff(b.toHost(b.rmsNorm(t([2, 4], x), t([4], wg), eps, 1)), gemma) < 1e-6);
  const fused = b.addRmsNorm(t([2, 4], x), t([2, 4], new Array(8).fill(0)), t([4], wg), eps, 1);
  assert.ok(maxAbsDiff(b.toHost(fused.out), gemma) < 1e-6);
});

test('scale rounds its factor to float32; softcap is cap * tanh(x / cap)', () => {
  const x = [-100, -1, 0, 0.5, 3, 1000];
  const s = b.toHost(b.scale(t([2, 3], x), Math.sqrt(3584)));
  assert.deepEqual(
    [...s],
    x.map((v) => Math.fround(v * Math.fround(Math.sqrt(3584)))),
  );
  const capped = b.toHost(b.softcap(t([2, 3], x), 30));
  assert.ok(
    maxAbsDiff(
      capped,
      x.map((v) => 30 * Math.tanh(v / 30)),
    ) < 1e-5,
  );
  assert.ok(Math.abs(capped[5]! - 30) < 1e-6, 'large logits approach the cap');
});

test('rope rotates neox pairs (i, i + d/2) and gptj pairs (2i, 2i + 1) by position x inv_freq, times mscale', () => {
  const invFreq = Float32Array.of(0.5, 0.25);
  const batch = buildStepBatch([{ tokenIds: [0, 0], startPos: 2, blockTable: [0], logits: 'none' }], 4);
  const head = [1, 2, 3, 4];
  for (const style of ['neox', 'gptj'] as const) {
    const spec: RopeSpec = { invFreq, mscale: 1.5, style, rotaryDim: 4 };
    // q: 2 tokens x 2 heads; k: 2 tokens x 1 head.
    const q = t([2, 8], [...head, ...head, ...head, ...head]);
    const k = t([2, 4], [...head, ...head]);
    b.rope(q, k, 4, spec, b.beginStep(batch));
    const pairs =
      style === 'neox'
        ? [
            [0, 2],
            [1, 3],
          ]
        : [
            [0, 1],
            [2, 3],
          ];
    const want = [2, 3].map((pos) => {
      const out = [...head];
      pairs.forEach(([a, c], i) => {
        const [cos, sin] = [Math.cos(pos * invFreq[i]!) * 1.5, Math.sin(pos * invFreq[i]!) * 1.5];
        out[a!] = head[a!]! * cos - head[c!]! * sin;
        out[c!] = head[c!]! * cos + head[a!]! * sin;
      });
      return out;
    });
    assert.ok(maxAbsDiff(b.toHost(q), [...want[0]!, ...want[0]!, ...want[1]!, ...want[1]!]) < 1e-5, style);
    assert.ok(maxAbsDiff(b.toHost(k), [...want[0]!, ...want[1]!]) < 1e-5, style);
  }
});

test('partial rotary leaves the dims past rotaryDim untouched', () => {
  const batch = buildStepBatch([{ tokenIds: [0], startPos: 3, blockTable: [0], logits: 'none' }], 4);
  const q = t([1, 4], [1, 2, 3, 4]);
  const k = t([1, 4], [1, 2, 3, 4]);
  b.rope(q, k, 4, { invFreq: Float32Array.of(1), mscale: 1, style: 'neox', rotaryDim: 2 }, b.beginStep(batch));
  const [c, s] = [Math.cos(3), Math.sin(3)];
  assert.ok(maxAbsDiff(b.toHost(q), [c - 2 * s, 2 * c + s, 3, 4]) < 1e-6);
});

test('linearActMul is actMul of the packed gate/up projection, bias included', () => {
  const [T, n, I] = [3, 5, 4];
  const x = t(
    [T, n],
    seq(T * n, (i) => Math.sin(i * 0.9)),
  );
  const w = t(
    [2 * I, n],
    seq(2 * I * n, (i) => Math.cos(i * 0.4)),
  );
  const bias = t(
    [2 * I],
    seq(2 * I, (i) => i * 0.3 - 1),
  );
  // By hand: gate row j and up row I + j of the packed weight.
  const dot = (r: number, o: number) => seq(n, (i) => cpuData(x).data[r * n + i]! * cpuData(w).data[o * n + i]!);
  const acts = {
    silu: (g: number) => g / (1 + Math.exp(-g)),
    gelu_tanh: (g: number) => 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g ** 3))),
  };
  for (const [act, f] of Object.entries(acts) as [keyof typeof acts, (g: number) => number][]) {
    for (const withBias of [false, true]) {
      const want = seq(T * I, (e) => {
        const [r, j] = [Math.floor(e / I), e % I];
        const add = (o: number) => dot(r, o).reduce((a, v) => a + v, withBias ? cpuData(bias).data[o]! : 0);
        return f(add(j)) * add(I + j);
      });
      const got = b.linearActMul(x, w, withBias ? bias : undefined, act);
      assert.deepEqual(got.shape, [T, I]);
      assert.ok(maxAbsDiff(b.toHost(got), want) < 1e-5, `${act}, bias ${withBias}`);
    }
  }
});

test('act-mul (SiLU and GELU-tanh), plain activations (GELU tanh and erf, ReLU²) and add', () => {
  const x = [-3, -1, 0, 0.5, 2];
  const up = [1, 2, 3, 4, 5];
  const silu = x.map((v, i) => (v / (1 + Math.exp(-v))) * up[i]!);
  // Gate and up side by side in each row (vLLM's SiluAndMul): two rows of [gate | up].
  const packed = t([2, 10], [...x, ...up, ...up, ...x]);
  const siluB = up.map((v, i) => (v / (1 + Math.exp(-v))) * x[i]!);
  const got = b.actMul(packed, 'silu');
  assert.deepEqual(got.shape, [2, 5]);
  assert.ok(maxAbsDiff(b.toHost(got), [...silu, ...siluB]) < 1e-6);
  assert.throws(() => b.actMul(t([1, 3], [1, 2, 3]), 'silu'), /odd number of columns/);
  const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  const tanh = x.map(geluTanh);
  const gated = [...x.map((v, i) => geluTanh(v) * up[i]!), ...up.map((v, i) => geluTanh(v) * x[i]!)];
  assert.ok(maxAbsDiff(b.toHost(b.actMul(packed, 'gelu_tanh')), gated) < 1e-5);
  assert.ok(maxAbsDiff(b.toHost(b.activation(t([5], x), 'gelu_tanh')), tanh) < 1e-6);
  // GELU(x) = x * Phi(x); Phi(-1) = 0.15865525393, Phi(0.5) = 0.69146246127, Phi(2) = 0.97724986805
  const exact = [-3 * 0.0013498980316, -0.15865525393, 0, 0.5 * 0.69146246127, 2 * 0.97724986805];
  assert.ok(maxAbsDiff(b.toHost(b.activation(t([5], x), 'gelu')), exact) < 1e-6);
  assert.deepEqual([...b.toHost(b.activation(t([5], x), 'relu2'))], [0, 0, 0, 0.25, 4]);
  assert.ok(Math.abs(erf(1) - 0.8427007929497149) < 1e-7);
  assert.deepEqual([...b.toHost(b.add(t([2], [1, 2]), t([2], [3, 5])))], [4, 7]);
});

test('splitColumns copies ragged column parts of every row, and refuses sizes that do not add up', () => {
  const [T, sizes] = [3, [5, 2, 1, 4]];
  const width = 12;
  const x = t(
    [T, width],
    seq(T * width, (i) => i),
  );
  const parts = b.splitColumns(x, sizes);
  let start = 0;
  parts.forEach((part, p) => {
    const size = sizes[p]!;
    assert.deepEqual(part.shape, [T, size]);
    const want = seq(T * size, (i) => Math.floor(i / size) * width + start + (i % size));
    assert.deepEqual([...b.toHost(part)], want, `part ${p}`);
    start += size;
  });
  // Parts are copies: rotating one in place (as rope does) leaves x alone.
  cpuData(parts[0]!).data.fill(-1);
  assert.equal(b.toHost(x)[0], 0);
  assert.deepEqual(
    b.splitColumns(t([1, 4], [1, 2, 3, 4]), [4]).map((p) => [...b.toHost(p)]),
    [[1, 2, 3, 4]],
  );
  assert.throws(() => b.splitColumns(x, [5, 2, 1]), /cannot be split/);
  assert.throws(() => b.splitColumns(x, [12, 0]), /cannot be split/);
});

test('embedding picks rows by token id or position; gatherLogitRows picks the logit rows', () => {
  const table = t([4, 2], [0, 1, 10, 11, 20, 21, 30, 31]);
  const batch = buildStepBatch(
    [
      { tokenIds: [3, 1], startPos: 0, blockTable: [0], logits: 'last' },
      { tokenIds: [2], startPos: 2, blockTable: [1], logits: 'last' },
    ],
    4,
  );
  const step = b.beginStep(batch);
  const tokens = b.embedding(table, step, 'tokens');
  assert.deepEqual([...b.toHost(tokens)], [30, 31, 10, 11, 20, 21]);
  assert.deepEqual([...b.toHost(b.embedding(table, step, 'positions'))], [0, 1, 10, 11, 20, 21]);
  assert.deepEqual([...b.toHost(b.gatherLogitRows(tokens, step))], [10, 11, 20, 21]);
});

test('loadWeight converts f16 and bf16 to f32 and transposes on request', () => {
  const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x0001, 0x7bff, 0x0000]).buffer);
  const w = b.loadWeight({ name: 'w', shape: [2, 3], dtype: 'f16', bytes: f16 });
  assert.deepEqual([...b.toHost(w)], [1, -2, 0.5, 2 ** -24, 65504, 0]);
  const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0x4040, 0xbf00, 0x4100]).buffer);
  const tw = b.loadWeight({ name: 'w', shape: [2, 2], dtype: 'bf16', bytes: bf16 }, { transpose: true });
  assert.deepEqual(tw.shape, [2, 2]);
  // stored [[1, 3], [-0.5, 8]] -> transposed [[1, -0.5], [3, 8]]
  assert.deepEqual([...b.toHost(tw)], [1, -0.5, 3, 8]);
});
