import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DType, HostTensor } from '../../src/backend/backend.ts';
import { quantizeQ8Groups } from '../../src/backend/cpu/quant-act.ts';
import type { CudaBackend } from '../../src/backend/cuda/backend.ts';
import type { DevPtr } from '../../src/backend/cuda/driver.ts';
import { QUANT_GEMM_MAX_ROWS, quantGemmPart } from '../../src/backend/cuda/quant-gemm.ts';
import { QTYPE, QUANT_GEMV_Q8 } from '../../src/backend/cuda/quant-kernels.ts';
import { quantizeActivations } from '../../src/backend/cuda/quant-linear.ts';
import {
  QuantCudaTensor,
  quantGemvRoute,
  quantGemvTmax,
  quantLinearPath,
} from '../../src/backend/cuda/quant-tensor.ts';
import { cuda, DTYPE_BYTES, decodeFrom } from '../../src/backend/cuda/tensor.ts';
import { encodeAs } from '../../src/primitives/float-bits.ts';
import type { QuantType } from '../../src/primitives/ggml-types.ts';
import { dequantize, quantize } from '../../src/primitives/quant/index.ts';
import { randomBlocks } from '../../src/primitives/quant/random.ts';
import { buildStepBatch } from '../../src/runner/step-batch.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { backendPerDtype } from '../helpers/cuda-backends.ts';
import { q8RoundTrip } from '../helpers/dequantizing-cpu.ts';
import { gpuSkip, hostTensor, randomValues, relL2 } from '../helpers/gpu.ts';

const skip = gpuSkip();
const TYPES: QuantType[] = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'];
const DTYPES: DType[] = ['bf16', 'f16', 'f32'];
/** Relative L2 against float64 products, as the float GEMV tests allow (test/gpu/cuda-kernels.test.ts). */
const TOL: Record<DType, number> = { f32: 2e-5, f16: 5e-3, bf16: 1e-2 };

const gpu = backendPerDtype();
let seed = (Date.now() & 0xffff) * 1000;
const freshSeed = () => seed++;

/** A quantized weight: blocks quantized from uniform values, or (`wild`) random levels under pooled scales. */
function quantHost(type: QuantType, rows: number, cols: number, wild = false, name = `${type}`): HostTensor {
  const bytes = wild
    ? randomBlocks(type, rows * cols, 0.5, freshSeed(), name)
    : quantize(type, randomValues(rows * cols, freshSeed()), name);
  return { name, shape: [rows, cols], dtype: type, bytes };
}

/** What the blocks mean, by the CPU codecs. */
const valuesOf = (h: HostTensor) => dequantize(h.dtype as QuantType, h.bytes, h.shape[0]! * h.shape[1]!);

/** A fresh arena, poisoned (NaN) so an output element no kernel wrote fails the comparison. */
function freshArena(g: CudaBackend): void {
  g.ctx.arena.reset();
  g.ctx.arena.poison();
}

/** `bytes` of device memory filled with NaN. */
function poisoned(g: CudaBackend, bytes: number): DevPtr {
  const p = g.ctx.drv.alloc(bytes);
  g.ctx.drv.fill32(p, 0x7fc07fc0, Math.ceil(bytes / 4));
  return p;
}

/** y[t, r] = Σ_j w[r, j] x[t, j] (+ bias[r]) in float64. */
function reference(w: Float32Array, x: Float32Array, T: number, m: number, k: number, bias?: Float32Array) {
  const out = new Float64Array(T * m);
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < m; r++) {
      let s = bias ? bias[r]! : 0;
      for (let j = 0; j < k; j++) s += w[r * k + j]! * x[t * k + j]!;
      out[t * m + r] = s;
    }
  }
  return out;
}

/**
 * What a quantized linear multiplies `T` rows of x by: on the integer GEMV route, x's 8-bit levels times their
 * group's d; else x itself.
 */
function linearInput(dtype: DType, x: Float32Array, T: number): Float32Array {
  return quantLinearPath(T) === 'gemv' && quantGemvRoute(dtype) === 'q8' ? q8RoundTrip(x) : x;
}

function check(dtype: DType, what: string, got: Float32Array, want: ArrayLike<number>): void {
  const e = relL2(got, want);
  assert.ok(e <= TOL[dtype], `${what} (${dtype}): relative L2 ${e} > ${TOL[dtype]} (seed base ${seed})`);
}

/** The first element whose bits differ, or null. */
function firstBitDifference(got: Uint8Array, want: Uint8Array, size: number): string | null {
  for (let i = 0; i < want.length; i += size) {
    for (let b = 0; b < size; b++) {
      if (got[i + b] !== want[i + b]) return `element ${i / size}`;
    }
  }
  return null;
}

/** Counts the scratch runs dequantized (the prefill route) while `f` runs. */
function countingDequantize<R>(g: CudaBackend, f: () => R): { result: R; dequantized: number } {
  const q = g.linears.quant;
  const original = q.dequantizeRows.bind(q);
  let dequantized = 0;
  q.dequantizeRows = (...args) => {
    dequantized++;
    original(...args);
  };
  try {
    return { result: f(), dequantized };
  } finally {
    q.dequantizeRows = original;
  }
}

describe('CUDA quantized kernels (kernels/quant.cu)', () => {
  for (const dtype of DTYPES) {
    test(`dequantization equals the CPU codec rounded to ${dtype}, bit for bit, every type`, { skip }, () => {
      const g = gpu(dtype);
      const size = DTYPE_BYTES[dtype];
      for (const type of TYPES) {
        for (const wild of [false, true]) {
          const h = quantHost(type, 24, 512, wild);
          const w = g.loadWeight(h);
          assert.ok(w instanceof QuantCudaTensor, `${type} stays in blocks`);
          const want = encodeAs(valuesOf(h), dtype);
          // All 24 rows, and rows 5..14 alone (a run starting inside the part).
          for (const [first, rows] of [
            [0, 24],
            [5, 10],
          ] as const) {
            const bytes = rows * 512 * size;
            const p = poisoned(g, bytes);
            try {
              g.linears.quant.dequantizeRows(w.parts[0]!, first, rows, 512, p);
              const got = new Uint8Array(bytes);
              g.ctx.drv.download(got, p);
              const diff = firstBitDifference(
                got,
                want.subarray(first * 512 * size, (first + rows) * 512 * size),
                size,
              );
              assert.equal(
                diff,
                null,
                `${type}${wild ? ' (random levels)' : ''} rows ${first}+${rows}: ${diff} differs`,
              );
            } finally {
              g.ctx.drv.free(p);
            }
          }
        }
      }
    });

    test(`activations quantized for the integer GEMV equal the CPU twin bit for bit: levels, d, half sums (${dtype})`, {
      skip,
    }, () => {
      const g = gpu(dtype);
      const [T, k] = [5, 512];
      const x = randomValues(T * k, freshSeed(), 3, dtype);
      x.fill(0, 64, 96); // a group of zeros: d = 0, levels 0
      x.set([127, 2.5, -2.5, 0.5], 96); // d = 1: ties, rounded away from zero
      x[130] = Number.NaN; // a NaN: its group's d NaN, levels 0
      for (let i = 160; i < 192; i++) x[i]! *= 1e-37; // d below float's smallest normal: levels 0 (f16: all 0)
      const gx = cuda(g.loadWeight(hostTensor('x', [T, k], x)));
      freshArena(g);
      const { xq, xs } = quantizeActivations(g.ctx, gx);
      const groups = (T * k) / 32;
      const levels = new Int8Array(T * k);
      const scales = new Uint8Array(groups * 8);
      g.ctx.drv.download(new Uint8Array(levels.buffer), xq);
      g.ctx.drv.download(scales, xs);
      const want = quantizeQ8Groups(decodeFrom(encodeAs(x, dtype), dtype));
      assert.ok(Number.isNaN(want.d[4]!) && want.d[5]! < 2 ** -126, 'the twin sees the NaN and the tiny group');
      const view = new DataView(scales.buffer);
      for (let i = 0; i < groups; i++) {
        const [d, sums] = [view.getFloat32(8 * i, true), view.getInt32(8 * i + 4, true)];
        assert.ok(Object.is(d, want.d[i]), `group ${i}: d ${d}, the twin's ${want.d[i]}`);
        assert.deepEqual(
          [(sums << 16) >> 16, sums >> 16],
          [want.sums[2 * i], want.sums[2 * i + 1]],
          `group ${i}: sums`,
        );
      }
      const diff = levels.findIndex((l, i) => l !== want.levels[i]);
      assert.equal(diff, -1, `level ${diff}: ${levels[diff]}, the twin's ${want.levels[diff]}`);
    });

    test(`the GEMV at 1, 2, 5 and 8 rows and the dequantize + GEMM path at 37 against float64 (${dtype})`, {
      skip,
    }, () => {
      const g = gpu(dtype);
      // 200 outputs: a ragged last block of warps; 512 inputs: two k-quant super-blocks, sixteen legacy blocks.
      const [m, k] = [200, 512];
      // The dequantize path for every type (the fused GEMM's own tests are below).
      g.linears.quant.route = 'dequantize';
      try {
        for (const type of TYPES) {
          const h = quantHost(type, m, k);
          const w = g.loadWeight(h);
          const wv = valuesOf(h);
          for (const T of [1, 2, 5, 8, 37]) {
            const x = randomValues(T * k, freshSeed(), 1, dtype);
            const gx = g.loadWeight(hostTensor('x', [T, k], x));
            freshArena(g);
            const { result, dequantized } = countingDequantize(g, () => g.toHost(g.linear(gx, w)));
            assert.equal(dequantized, T > 8 ? 1 : 0, `${type} ${T} rows: the path taken (scratch runs)`);
            check(dtype, `${type} linear ${T}x${k}x${m}`, result, reference(wv, linearInput(dtype, x, T), T, m, k));
          }
        }
      } finally {
        g.linears.quant.route = 'fused';
      }
    });

    test(`the integer GEMV's tuning builds (features per warp, unroll) against float64, ragged outputs (${dtype})`, {
      skip: skip || (quantGemvRoute(dtype) !== 'q8' && 'float32 takes the float route'),
    }, () => {
      const g = gpu(dtype);
      // 200 outputs: 25 features past the last whole block of 4 x 8 warps; 512 inputs.
      const [m, k] = [200, 512];
      for (const type of ['q4_k', 'q6_k', 'q8_0', 'q5_0'] as const) {
        const h = quantHost(type, m, k);
        const part = (g.loadWeight(h) as QuantCudaTensor).parts[0]!;
        const wv = valuesOf(h);
        for (const [rows, unroll] of [
          [2, 4],
          [4, 2],
        ]) {
          for (const T of [1, 5]) {
            const x = randomValues(T * k, freshSeed(), 1, dtype);
            const gx = cuda(g.loadWeight(hostTensor('x', [T, k], x)));
            freshArena(g);
            const q = quantizeActivations(g.ctx, gx);
            const out = g.ctx.empty([T, m]);
            const defines = { QTYPE: QTYPE[type], Q8_ROWS: rows, Q8_UNROLL: unroll };
            g.ctx.kernel(QUANT_GEMV_Q8[quantGemvTmax(T)], defines).launch([Math.ceil(m / (8 * rows))], [256], {
              y: out.ptr,
              xq: q.xq,
              xs: q.xs,
              w: part.ptr,
              bias: 0n,
              rows: T,
              n: m,
              k,
              rowBytes: part.rowBytes,
              ldy: m,
            });
            check(
              dtype,
              `${type} R${rows} U${unroll} ${T} rows`,
              g.toHost(out),
              reference(wv, q8RoundTrip(x), T, m, k),
            );
          }
        }
      }
    });

    test(`a stacked weight of three types, with a bias, through linear and linearActMul, in scratch runs of 40 rows (${dtype})`, {
      skip,
    }, () => {
      const g = gpu(dtype);
      const k = 512;
      // q/k/v-like parts; two runs of q4_k around a q6_k part stay three parts.
      const hosts = [
        quantHost('q4_k', 64, k),
        quantHost('q6_k', 32, k),
        quantHost('q8_0', 40, k),
        quantHost('q4_k', 8, k),
      ];
      const m = 144;
      const w = g.loadStacked(hosts);
      assert.ok(w instanceof QuantCudaTensor);
      assert.deepEqual(
        w.parts.map((p) => [p.type, p.rows]),
        [
          ['q4_k', 64],
          ['q6_k', 32],
          ['q8_0', 40],
          ['q4_k', 8],
        ],
      );
      const wv = new Float32Array(m * k);
      let at = 0;
      for (const h of hosts) {
        wv.set(valuesOf(h), at);
        at += h.shape[0]! * k;
      }
      const bias = randomValues(m, freshSeed(), 1, dtype);
      const gb = g.loadWeight(hostTensor('b', [m], bias));
      const q = g.linears.quant;
      // Runs of 40 rows: the 64-row part in two (40 + 24), the others whole; each GEMM writes its own columns.
      const [savedRun, savedRoute] = [q.runBytes, q.route];
      q.runBytes = 40 * k * DTYPE_BYTES[dtype];
      q.route = 'dequantize';
      try {
        for (const T of [3, 37]) {
          const x = randomValues(T * k, freshSeed(), 1, dtype);
          const gx = g.loadWeight(hostTensor('x', [T, k], x));
          const want = reference(wv, linearInput(dtype, x, T), T, m, k, bias);
          freshArena(g);
          check(dtype, `stacked linear + bias ${T} rows`, g.toHost(g.linear(gx, w, gb)), want);
          // act(gate) * up over the packed halves, the bias in both.
          const half = m / 2;
          const gated = new Float64Array(T * half);
          for (let t = 0; t < T; t++) {
            for (let c = 0; c < half; c++) {
              const gate = want[t * m + c]!;
              gated[t * half + c] = (gate / (1 + Math.exp(-gate))) * want[t * m + half + c]!;
            }
          }
          freshArena(g);
          const act = countingDequantize(g, (): Float32Array => g.toHost(g.linearActMul(gx, w, gb, 'silu')));
          assert.equal(act.dequantized, T > 8 ? 5 : 0, `${T} rows: scratch runs`);
          check(dtype, `stacked linearActMul ${T} rows`, act.result, gated);
        }
      } finally {
        q.runBytes = savedRun;
        q.route = savedRoute;
      }
    });

    test(`embedding rows gathered from a quantized table of two parts, bit for bit (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      const hidden = 512;
      const hosts = [quantHost('q4_k', 50, hidden, false, 'a'), quantHost('q8_0', 30, hidden, false, 'b')];
      const table = g.loadStacked(hosts);
      const values = new Float32Array(80 * hidden);
      values.set(valuesOf(hosts[0]!), 0);
      values.set(valuesOf(hosts[1]!), 50 * hidden);
      const rnd = mulberry32(freshSeed());
      const ids = [0, 49, 50, 79, ...Array.from({ length: 7 }, () => Math.floor(rnd() * 80))];
      const batch = buildStepBatch([{ tokenIds: ids, startPos: 0, blockTable: [0], logits: 'last' }], 16);
      const step = g.beginStep(batch);
      g.ctx.arena.poison();
      const got = g.toHost(g.embedding(table, step, 'tokens'));
      const rows = new Float32Array(ids.length * hidden);
      ids.forEach((id, t) => {
        rows.set(values.subarray(id * hidden, (id + 1) * hidden), t * hidden);
      });
      const want = decodeFrom(encodeAs(rows, dtype), dtype);
      for (let i = 0; i < want.length; i++) {
        if (!Object.is(got[i], want[i]))
          assert.fail(
            `token ${Math.floor(i / hidden)} (id ${ids[Math.floor(i / hidden)]}), column ${i % hidden}: ${got[i]} for ${want[i]}`,
          );
      }
    });
  }

  test('dummy blocks made on the device are valid blocks: finite, varied, the GEMV and the GEMM path agree', {
    skip,
  }, () => {
    const g = gpu('bf16');
    const [m, k] = [96, 1024];
    for (const type of TYPES) {
      const w = g.loadWeight({ name: `dummy ${type}`, shape: [m, k], dtype: type, bytes: new Uint8Array(0) });
      assert.ok(w instanceof QuantCudaTensor);
      const part = w.parts[0]!;
      const blocks = new Uint8Array(part.rows * part.rowBytes);
      g.ctx.drv.download(blocks, part.ptr);
      const values = dequantize(type, blocks, m * k);
      assert.ok(values.every(Number.isFinite), `${type}: finite`);
      assert.ok(new Set(values).size > 16, `${type}: varied values`);
      const x = randomValues(37 * k, freshSeed(), 1, 'bf16');
      const gx = g.loadWeight(hostTensor('x', [37, k], x));
      const want = reference(values, x, 37, m, k);
      freshArena(g);
      check('bf16', `${type} dummy, dequantize + GEMM`, g.toHost(g.linear(gx, w)), want);
      const x1 = x.subarray(0, 4 * k);
      const gx1 = g.loadWeight(hostTensor('x', [4, k], Float32Array.from(x1)));
      freshArena(g);
      const want1 = reference(values, linearInput('bf16', Float32Array.from(x1), 4), 4, m, k);
      check('bf16', `${type} dummy, GEMV`, g.toHost(g.linear(gx1, w)), want1);
    }
  });
});

describe('CUDA fused quantized GEMM (kernels/quant_gemm.cu)', () => {
  /** Random x rows whose values (multiples of 1/128 in [-1, 1)) both 16-bit types hold exactly: one reference for both. */
  function exactX(values: number): Float32Array {
    const rnd = mulberry32(freshSeed());
    return Float32Array.from({ length: values }, () => (Math.floor(rnd() * 256) - 128) / 128);
  }
  /** The poison's 16-bit pattern (a NaN in both types). */
  const POISON = 0x7fc0;
  /** Unit roundoff of the 16-bit output (8 and 11 significant bits). */
  const UNIT: Record<'bf16' | 'f16', number> = { bf16: 2 ** -8, f16: 2 ** -11 };

  /**
   * Σ_j x[t, j] w[c, j] in float64 over the weight as the kernel holds it (the codec's values rounded to the 16-bit
   * type, as quant_dequant stores them), and per element the bound the kernel must meet: products of 16-bit values
   * are exact in fp32, their sum in any order (tensor-core accumulation, split partials) errs by at most
   * 2 k 2^-24 Σ|x w| (twice the recursive-summation bound, for the tensor cores' internal alignment), then one rounding
   * to the output type.
   */
  function bounded(w: Float32Array, x: Float32Array, T: number, n: number, k: number, dtype: 'bf16' | 'f16') {
    const w16 = decodeFrom(encodeAs(w, dtype), dtype);
    const want = new Float64Array(T * n);
    const bound = new Float64Array(T * n);
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < n; c++) {
        let [s, abs] = [0, 0];
        for (let j = 0; j < k; j++) {
          const p = x[t * k + j]! * w16[c * k + j]!;
          s += p;
          abs += Math.abs(p);
        }
        const acc = 2 * k * 2 ** -24 * abs;
        want[t * n + c] = s;
        bound[t * n + c] = acc + UNIT[dtype] * (Math.abs(s) + acc);
      }
    }
    return { want, bound };
  }

  function within(what: string, got: ArrayLike<number>, want: Float64Array, bound: Float64Array, scale = 1): void {
    for (let i = 0; i < want.length; i++) {
      const err = Math.abs(got[i]! - want[i]!);
      if (!(err <= scale * bound[i]!))
        assert.fail(
          `${what}: element ${i}: ${got[i]}, float64 ${want[i]}, error ${err} > ${scale * bound[i]!} (seed base ${seed})`,
        );
    }
  }

  // k of 512 / 1024 inputs (2 / 4 runs of 256); n not a multiple of the CTA's 128 features; the row counts span every
  // row tile and several tiles of rows; besides the plan, each row count runs split K (every run its own split, or 3
  // of 4) and the 256-row build.
  const CASES: { type: QuantType; n: number; k: number }[] = [
    { type: 'q4_k', n: 1000, k: 1024 },
    { type: 'q6_k', n: 200, k: 512 },
    { type: 'q8_0', n: 200, k: 1024 },
    { type: 'q5_k', n: 1000, k: 512 },
  ];
  const ROWS = [9, 16, 33, 64, 100, 256, 300];

  test('every type, bf16 and f16, 9..300 rows, split K on and off, each row tile: float64 products within fp32 summation and one rounding, ragged outputs into a wider output, nothing else written', {
    skip,
  }, () => {
    const maxRows = ROWS[ROWS.length - 1]!;
    for (const { type, n, k } of CASES) {
      const h = quantHost(type, n, k, true);
      const x = exactX(maxRows * k);
      const wv = valuesOf(h);
      for (const dtype of ['bf16', 'f16'] as const) {
        // Rows t < T of the reference are the first T rows' products.
        const { want, bound } = bounded(wv, x, maxRows, n, k, dtype);
        const g = gpu(dtype);
        const size = DTYPE_BYTES[dtype];
        const part = (g.loadWeight(h) as QuantCudaTensor).parts[0]!;
        const gx = cuda(g.loadWeight(hostTensor('x', [maxRows, k], x)));
        const runs = k / 256;
        const wsBytes = runs * maxRows * n * 4;
        const ws = { ptr: g.ctx.drv.alloc(wsBytes), bytes: wsBytes };
        // Output columns [col, col + n) of rows ldy wide, and one row past the last: all else stays poisoned.
        const [col, ldy] = [8, n + 24];
        try {
          for (const T of ROWS) {
            for (const force of [{}, { split: runs === 4 ? 3 : runs }, { tile: 256 as const }]) {
              const what = `${type} ${dtype} ${T}x${k}x${n} ${JSON.stringify(force)}`;
              const bytes = (T + 1) * ldy * size;
              const y = poisoned(g, bytes);
              try {
                quantGemmPart(g.ctx, y + BigInt(col * size), ldy, gx.ptr, T, k, part, ws, force);
                const raw = new Uint8Array(bytes);
                g.ctx.drv.download(raw, y);
                const bits = new Uint16Array(raw.buffer);
                const values = decodeFrom(raw, dtype);
                const got = new Float32Array(T * n);
                for (let t = 0; t <= T; t++) {
                  for (let c = 0; c < ldy; c++) {
                    const inside = t < T && c >= col && c < col + n;
                    if (inside) got[t * n + c - col] = values[t * ldy + c]!;
                    else if (bits[t * ldy + c] !== POISON) assert.fail(`${what}: wrote row ${t} column ${c}`);
                  }
                }
                within(what, got, want.subarray(0, T * n), bound.subarray(0, T * n));
              } finally {
                g.ctx.drv.free(y);
              }
            }
          }
        } finally {
          g.ctx.drv.free(ws.ptr);
        }
      }
    }
  });

  for (const dtype of ['bf16', 'f16'] as const) {
    test(`backend.linear: the fused GEMM for 24 and 300 rows (no scratch runs), the dequantize path past 512 or on its route, equal within their bounds: two parts and a bias (${dtype})`, {
      skip,
    }, () => {
      const g = gpu(dtype);
      const q = g.linears.quant;
      const k = 768;
      const hosts = [quantHost('q4_k', 136, k), quantHost('q6_k', 72, k)];
      const m = 208;
      const w = g.loadStacked(hosts);
      assert.ok(w instanceof QuantCudaTensor && w.parts.length === 2);
      const wv = new Float32Array(m * k);
      wv.set(valuesOf(hosts[0]!), 0);
      wv.set(valuesOf(hosts[1]!), 136 * k);
      const bias = randomValues(m, freshSeed(), 1, dtype);
      const gb = g.loadWeight(hostTensor('b', [m], bias));
      for (const T of [24, 64, 300]) {
        const x = exactX(T * k);
        const gx = cuda(g.loadWeight(hostTensor('x', [T, k], x)));
        const { want, bound } = bounded(wv, x, T, m, k, dtype);
        const withBias = Float64Array.from(want, (v, i) => v + bias[i % m]!);
        const run = (route: 'fused' | 'dequantize', b?: typeof gb) => {
          q.route = route;
          try {
            freshArena(g);
            return countingDequantize(g, (): Float32Array => g.toHost(g.linear(gx, w, b)));
          } finally {
            q.route = 'fused';
          }
        };
        const fused = run('fused');
        assert.equal(fused.dequantized, T <= QUANT_GEMM_MAX_ROWS ? 0 : 2, `${T} rows: the path taken (scratch runs)`);
        const dequantized = run('dequantize');
        assert.equal(dequantized.dequantized, 2, `${T} rows on the dequantize route: its scratch runs`);
        within(`${T} rows, fused`, fused.result, want, bound);
        within(`${T} rows, dequantize path`, dequantized.result, want, bound);
        // Both within their bound of the same sum: within twice it of each other.
        within(
          `${T} rows, fused against the dequantize path`,
          fused.result,
          Float64Array.from(dequantized.result),
          bound,
          2,
        );
        check(dtype, `${T} rows with a bias`, run('fused', gb).result, withBias);
      }
    });
  }
});
