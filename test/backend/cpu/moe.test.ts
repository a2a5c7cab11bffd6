import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { routeTokens } from '../../../src/backend/cpu/moe.ts';
import { QuantCpuTensor } from '../../../src/backend/cpu/quant-tensor.ts';
import { CpuTensor } from '../../../src/backend/cpu/tensor.ts';
import type { MoeSpec, MoeWeights } from '../../../src/backend/moe-spec.ts';
import type { QuantType } from '../../../src/primitives/ggml-types.ts';
import { codecOf, quantize } from '../../../src/primitives/quant/index.ts';
import { mulberry32 } from '../../../src/util/random.ts';
import { type MoeArrays, referenceMoe } from '../../helpers/moe-reference.ts';
import { maxAbsDiff } from '../../helpers/paged-session.ts';

function random(n: number, seed: number, scale = 1): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

interface Case {
  T: number;
  H: number;
  E: number;
  I: number;
  /** Shared expert width (0: none) and whether it is gated. */
  Is?: number;
  gated?: boolean;
}

function makeCase(c: Case, seed: number): { x: Float32Array; arrays: MoeArrays } {
  const { T, H, E, I, Is = 0 } = c;
  const arrays: MoeArrays = {
    router: random(E * H, seed + 1),
    gateUp: random(E * 2 * I * H, seed + 2, 0.5),
    down: random(E * H * I, seed + 3, 0.5),
    shared: Is
      ? {
          gateUp: random(2 * Is * H, seed + 4, 0.5),
          down: random(H * Is, seed + 5, 0.5),
          gate: c.gated ? random(H, seed + 6) : undefined,
        }
      : undefined,
  };
  return { x: random(T * H, seed), arrays };
}

/** The arrays as weights on `b`, loaded as a model's would be (so threaded backends get shared memory). */
function load(b: CpuBackend, c: Case, a: MoeArrays): MoeWeights {
  const w = (name: string, shape: number[], data: ArrayLike<number>) =>
    b.loadWeight({ name, shape, dtype: 'f32', bytes: new Uint8Array(Float32Array.from(data).buffer) });
  const { H, E, I, Is = 0 } = c;
  return {
    router: w('router', [E, H], a.router),
    gateUp: w('gate_up', [E, 2 * I, H], a.gateUp),
    down: w('down', [E, H, I], a.down),
    shared: a.shared && {
      gateUp: w('shared.gate_up', [2 * Is, H], a.shared.gateUp),
      down: w('shared.down', [H, Is], a.shared.down),
      gate: a.shared.gate && w('shared.gate', [1, H], a.shared.gate),
    },
  };
}

test('moe matches a float64 dense reference: softmax, top-k, renormalised or not, shared expert gated or not', () => {
  const b = new CpuBackend({ threads: 1 });
  const cases: [Case, MoeSpec][] = [
    [
      { T: 1, H: 24, E: 6, I: 16 },
      { topK: 2, normTopK: true },
    ],
    [
      { T: 9, H: 24, E: 8, I: 12 },
      { topK: 2, normTopK: false },
    ],
    [
      { T: 13, H: 32, E: 5, I: 20, Is: 40, gated: true },
      { topK: 3, normTopK: false },
    ],
    [
      { T: 4, H: 16, E: 4, I: 8, Is: 24 },
      { topK: 1, normTopK: true },
    ],
    [
      { T: 6, H: 16, E: 3, I: 8 },
      { topK: 3, normTopK: true },
    ],
  ];
  cases.forEach(([c, spec], i) => {
    const { x, arrays } = makeCase(c, 100 * i);
    const got = b.toHost(b.moe(new CpuTensor([c.T, c.H], x), load(b, c, arrays), spec));
    const want = referenceMoe(x, c.T, c.H, c.E, c.I, arrays, spec);
    assert.ok(maxAbsDiff(got, want) < 1e-5, `case ${i}: differs by ${maxAbsDiff(got, want)}`);
  });
});

test('routing: the k most probable experts, most probable first, the lower id on a tie; weights as the config says', () => {
  // Token 0: experts 1 and 3 tie above the rest; token 1: a clear order 2 > 0 > 1 > 3.
  const logits = Float32Array.from([0, 2, 1, 2, 1, 0.5, 3, -1]);
  const { experts, weights } = routeTokens(logits, 2, 4, { topK: 2, normTopK: true });
  assert.deepEqual([...experts], [1, 3, 2, 0]);
  assert.ok(Math.abs(weights[0]! - 0.5) < 1e-7 && Math.abs(weights[1]! - 0.5) < 1e-7);
  const p = [1, 0.5, 3, -1].map(Math.exp);
  assert.ok(Math.abs(weights[2]! - p[2]! / (p[2]! + p[0]!)) < 1e-7);
  const raw = routeTokens(logits, 2, 4, { topK: 2, normTopK: false }).weights;
  const z = p.reduce((a, v) => a + v, 0);
  assert.ok(Math.abs(raw[2]! - p[2]! / z) < 1e-7 && Math.abs(raw[3]! - p[0]! / z) < 1e-7);
  assert.throws(() => routeTokens(logits, 2, 4, { topK: 5, normTopK: true }), /top-k 5 outside 1\.\.4 experts/);
});

test('only the chosen experts are read: poisoning every expert no token chose leaves the output unchanged', () => {
  const b = new CpuBackend({ threads: 1 });
  const c: Case = { T: 3, H: 16, E: 16, I: 8 };
  const spec = { topK: 2, normTopK: true };
  const { x, arrays } = makeCase(c, 7);
  const want = b.toHost(b.moe(new CpuTensor([c.T, c.H], x), load(b, c, arrays), spec));
  const logits = new Float32Array(c.T * c.E);
  for (let t = 0; t < c.T; t++)
    for (let e = 0; e < c.E; e++)
      for (let h = 0; h < c.H; h++) logits[t * c.E + e]! += arrays.router[e * c.H + h]! * x[t * c.H + h]!;
  const chosen = new Set(routeTokens(logits, c.T, c.E, spec).experts);
  assert.ok(chosen.size <= c.T * spec.topK && chosen.size < c.E);
  const gateUp = Float32Array.from(arrays.gateUp);
  const down = Float32Array.from(arrays.down);
  for (let e = 0; e < c.E; e++) {
    if (chosen.has(e)) continue;
    gateUp.fill(Number.NaN, e * 2 * c.I * c.H, (e + 1) * 2 * c.I * c.H);
    down.fill(Number.NaN, e * c.H * c.I, (e + 1) * c.H * c.I);
  }
  const got = b.toHost(b.moe(new CpuTensor([c.T, c.H], x), load(b, c, { ...arrays, gateUp, down }), spec));
  assert.deepEqual(got, want);
});

test('moe with its expert GEMMs split over worker threads gives exactly the single-thread result', () => {
  const one = new CpuBackend({ threads: 1 });
  const three = new CpuBackend({ threads: 3 });
  const c: Case = { T: 24, H: 128, E: 4, I: 256, Is: 256, gated: true };
  const spec = { topK: 2, normTopK: false };
  const { x, arrays } = makeCase(c, 11);
  const want = one.toHost(one.moe(new CpuTensor([c.T, c.H], x), load(one, c, arrays), spec));
  const w3 = load(three, c, arrays);
  // Twice: the second call reuses the stacked weights the workers already know.
  for (let r = 0; r < 2; r++) assert.deepEqual(three.toHost(three.moe(new CpuTensor([c.T, c.H], x), w3, spec)), want);
});

/**
 * Experts kept in blocks: a GGUF's stacked `[E, rows, cols]` tensors, or per-expert parts of two types stacked as one
 * `[E · rows, cols]` weight (what ModelWeights.loadPacked makes of gate and up stored as different types).
 */
function loadQuantized(
  b: CpuBackend,
  c: Case,
  a: MoeArrays,
  types: { gateUp: QuantType; down: QuantType; up?: QuantType },
) {
  const { H, E, I } = c;
  const host = (name: string, shape: number[], type: QuantType, values: Float32Array) => ({
    name,
    shape,
    dtype: type,
    bytes: quantize(type, values),
  });
  const gateUp = Float32Array.from(a.gateUp);
  const float = (name: string, shape: number[], data: ArrayLike<number>) =>
    b.loadWeight({ name, shape, dtype: 'f32', bytes: new Uint8Array(Float32Array.from(data).buffer) });
  const stack = types.up
    ? b.loadStacked(
        Array.from({ length: 2 * E }, (_, i) => {
          const type = i % 2 ? types.up! : types.gateUp;
          return host(
            `expert ${i >> 1} ${i % 2 ? 'up' : 'gate'}`,
            [I, H],
            type,
            gateUp.subarray(i * I * H, (i + 1) * I * H),
          );
        }),
      )
    : b.loadWeight(host('gate_up', [E, 2 * I, H], types.gateUp, gateUp));
  return {
    router: float('router', [E, H], a.router),
    gateUp: stack,
    down: b.loadWeight(host('down', [E, H, I], types.down, Float32Array.from(a.down))),
  };
}

/**
 * The block computed token by token: each chosen expert's gate/up and down loaded as weights of their own and run by
 * `linear` (the same blocks, the same 8-bit activations), weighted by routeTokens' weights.
 */
function expertByExpert(
  b: CpuBackend,
  c: Case,
  a: MoeArrays,
  types: { gateUp: QuantType; down: QuantType; up?: QuantType },
  x: Float32Array,
  spec: MoeSpec,
): Float32Array {
  const { T, H, E, I } = c;
  const router = b.loadWeight({
    name: 'r',
    shape: [E, H],
    dtype: 'f32',
    bytes: new Uint8Array(Float32Array.from(a.router).buffer),
  });
  const logits = b.toHost(b.linear(new CpuTensor([T, H], x), router));
  const { experts, weights } = routeTokens(logits, T, E, spec);
  const gu = Float32Array.from(a.gateUp);
  const down = Float32Array.from(a.down);
  const blocks = (type: QuantType, rows: number, cols: number, values: Float32Array) => ({
    name: 'expert',
    shape: [rows, cols],
    dtype: type,
    bytes: quantize(type, values),
  });
  const out = new Float32Array(T * H);
  for (let i = 0; i < experts.length; i++) {
    const [t, e] = [Math.floor(i / spec.topK), experts[i]!];
    const gate = gu.subarray(e * 2 * I * H, (e * 2 + 1) * I * H);
    const up = gu.subarray((e * 2 + 1) * I * H, (e + 1) * 2 * I * H);
    const gateUp = b.loadStacked([blocks(types.gateUp, I, H, gate), blocks(types.up ?? types.gateUp, I, H, up)]);
    const act = b.actMul(b.linear(new CpuTensor([1, H], x.slice(t * H, (t + 1) * H)), gateUp), 'silu');
    const y = b.toHost(b.linear(act, b.loadWeight(blocks(types.down, H, I, down.slice(e * H * I, (e + 1) * H * I)))));
    for (let h = 0; h < H; h++) out[t * H + h]! += weights[i]! * y[h]!;
  }
  return out;
}

test('experts kept in blocks: each chosen expert read from its own rows, as its own weight would compute it', () => {
  const b = new CpuBackend({ threads: 1 });
  const spec = { topK: 2, normTopK: true };
  const cases: [Case, { gateUp: QuantType; down: QuantType; up?: QuantType }][] = [
    [
      { T: 1, H: 64, E: 6, I: 32 },
      { gateUp: 'q8_0', down: 'q4_0' },
    ],
    [
      { T: 7, H: 64, E: 6, I: 32 },
      { gateUp: 'q4_0', down: 'q8_0' },
    ],
    [
      { T: 3, H: 256, E: 4, I: 256 },
      { gateUp: 'q4_k', down: 'q6_k' },
    ],
    // Gate and up of different types: 2E parts of I rows, an expert's window across two of them.
    [
      { T: 5, H: 64, E: 4, I: 32 },
      { gateUp: 'q4_0', up: 'q8_0', down: 'q8_0' },
    ],
  ];
  cases.forEach(([c, types], i) => {
    const { x, arrays } = makeCase(c, 300 + i);
    const w = loadQuantized(b, c, arrays, types);
    assert.ok(w.gateUp instanceof QuantCpuTensor && w.down instanceof QuantCpuTensor, `case ${i}: kept in blocks`);
    const got = b.toHost(b.moe(new CpuTensor([c.T, c.H], x), w, spec));
    const want = expertByExpert(b, c, arrays, types, x, spec);
    const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    // Float sums of the same integer dot products in another order (rows grouped per expert, or one token).
    assert.ok(maxAbsDiff(got, want) < 1e-5 * scale, `case ${i}: differs by ${maxAbsDiff(got, want)} of ${scale}`);
  });
});

test('experts kept in blocks: poisoning every block of the experts no token chose leaves the output unchanged; threads agree exactly', () => {
  const one = new CpuBackend({ threads: 1 });
  const three = new CpuBackend({ threads: 3 });
  const c: Case = { T: 3, H: 256, E: 12, I: 256 };
  const types = { gateUp: 'q4_k', down: 'q8_0' } as const;
  const spec = { topK: 2, normTopK: true };
  const { x, arrays } = makeCase(c, 17);
  const xt = new CpuTensor([c.T, c.H], x);
  const w = loadQuantized(one, c, arrays, types);
  const want = one.toHost(one.moe(xt, w, spec));
  const chosen = new Set(routeTokens(one.toHost(one.linear(xt, w.router)), c.T, c.E, spec).experts);
  assert.ok(chosen.size < c.E);
  // Every block's scale of an unchosen expert set to a NaN half (0x7e00): reading one row of it poisons the output.
  const poison = (t: QuantCpuTensor, rowsPerExpert: number) => {
    for (const part of t.parts) {
      const c2 = codecOf(part.type);
      for (let r = 0; r < part.rows; r++) {
        if (chosen.has(Math.floor(r / rowsPerExpert))) continue;
        for (let at = r * part.rowBytes; at < (r + 1) * part.rowBytes; at += c2.blockBytes) {
          part.bytes[at] = 0x00;
          part.bytes[at + 1] = 0x7e;
        }
      }
    }
  };
  poison(w.gateUp as QuantCpuTensor, 2 * c.I);
  poison(w.down as QuantCpuTensor, c.H);
  assert.deepEqual(one.toHost(one.moe(xt, w, spec)), want);
  // The expert windows split over worker threads (enough tokens per expert to split): the same numbers.
  const many: Case = { T: 24, H: 256, E: 4, I: 256 };
  const big = makeCase(many, 19);
  const bigX = new CpuTensor([many.T, many.H], big.x);
  const single = one.toHost(one.moe(bigX, loadQuantized(one, many, big.arrays, types), spec));
  const w3 = loadQuantized(three, many, big.arrays, types);
  for (let r = 0; r < 2; r++) assert.deepEqual(three.toHost(three.moe(bigX, w3, spec)), single);
});
