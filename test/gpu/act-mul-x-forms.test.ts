import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DType, GatedActivation, Tensor } from '../../src/backend/backend.ts';
import { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { actMul } from '../../src/backend/cuda/elementwise.ts';
import { FP8_QUANTIZE_ROWS, Fp8CudaTensor, hasFp8 } from '../../src/backend/cuda/fp8.ts';
import { FP8_GEMV_MAX_ROWS, fp8RouteFor } from '../../src/backend/cuda/fp8-gemv.ts';
import { QUANT_ACT_Q8 } from '../../src/backend/cuda/quant-kernels.ts';
import { quantGemvRoute } from '../../src/backend/cuda/quant-tensor.ts';
import { cuda } from '../../src/backend/cuda/tensor.ts';
import type { XForm } from '../../src/backend/cuda/x-form.ts';
import { quantize } from '../../src/primitives/quant/index.ts';
import { backendPerDtype } from '../helpers/cuda-backends.ts';
import { gpuSkip, hostTensor, randomValues } from '../helpers/gpu.ts';
import { checkProducer, requestsOf, upload } from '../helpers/x-forms.ts';

// The gated product act(gate) * up that also writes its output as the down projection reads it (kernels/elementwise.cu
// act_mul XQ): the quantized copy must be bit for bit what the linear's own quantizing launch writes from the 16-bit
// output and what the CPU twin computes from it, and the 16-bit output must not change and must be act(gate) * up.

const skip = gpuSkip();
const noFp8 = skip || (!hasFp8(CudaDriver.open().info) && 'the GPU has no FP8 (compute capability < 8.9)');
const DTYPES: DType[] = ['bf16', 'f16', 'f32'];
const gpu = backendPerDtype();
let seed = (Date.now() & 0xffff) * 1000 + 500;

/**
 * [rows, n] of the output, x being [rows, 2n]: decode's 1 to 8 rows, 14336 (Llama-3-8B's MLP width) among them. q8
 * runs grid-stride, a warp per group wherever the group starts; e4m3 a block per row (14336: 14 values per thread
 * of 1,024; 96: a single warp going round three times), and needs 16-value rows only: 272 and 48 (not multiples of
 * 32) are its own.
 */
const SHAPES: Record<XForm, [number, number][]> = {
  q8: [
    [1, 14336],
    [2, 4096],
    [3, 96],
    [4, 1024],
    [5, 512],
    [6, 768],
    [7, 256],
    [8, 14336],
  ],
  e4m3: [
    [1, 14336],
    [2, 272],
    [3, 96],
    [4, 4096],
    [5, 48],
    [6, 768],
    [7, 256],
    [8, 14336],
  ],
};

/**
 * x `[rows, 2n]` (gate then up per row) with the quantization edge cases where the row is wide enough: gate zero
 * over the first 32 outputs of row 0 (a zero group: d 0, levels 0), up tiny over the next 32 (d below float's
 * smallest normal: levels 0; f16 outputs flush to 0), up NaN at output 70 (its group's d NaN; e4m3: skipped by the
 * row's amax, coded 0x7f); row 1 all zeros (outputs 0, e4m3 scale 1), row 2 with a NaN gate (that output NaN).
 */
function inputs(rows: number, n: number, dtype: DType): Float32Array {
  const x = randomValues(rows * 2 * n, seed++, 3, dtype);
  if (n >= 256) {
    x.fill(0, 0, 32);
    for (let i = n + 32; i < n + 64; i++) x[i]! *= 1e-37;
    x[n + 70] = Number.NaN;
  }
  if (rows > 1) x.fill(0, 2 * n, 4 * n);
  if (rows > 2) x[4 * n + 5] = Number.NaN;
  return x;
}

const ACTS: Record<GatedActivation, (g: number) => number> = {
  silu: (g) => g / (1 + Math.exp(-g)),
  gelu_tanh: (g) => 0.5 * g * (1 + Math.tanh(0.7978845608028654 * (g + 0.044715 * g ** 3))),
};

/**
 * One rounding of the output (float32's expf and tanhf add a few float32 ulps), plus tanhf's absolute error times
 * |gate · up| (GELU's 1 + tanh cancels for negative gates); f16: its subnormals' spacing too.
 */
const REL: Record<DType, number> = { f32: 2 ** -20, bf16: 2 ** -8, f16: 2 ** -10 };
const CANCEL = 2 ** -20;
const ABS: Record<DType, number> = { f32: 1e-36, bf16: 1e-36, f16: 2 ** -24 };

/** The output against float64 act(gate) * up of the uploaded (rounded) x: NaN exactly where x has one. */
function checkValues(
  what: string,
  out: Float32Array,
  x: Float32Array,
  rows: number,
  n: number,
  dtype: DType,
  act: GatedActivation,
) {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < n; c++) {
      const [gate, up] = [x[2 * r * n + c]!, x[(2 * r + 1) * n + c]!];
      const want = ACTS[act](gate) * up;
      const got = out[r * n + c]!;
      if (Number.isNaN(want)) {
        assert.ok(Number.isNaN(got), `${what}: [${r}, ${c}] ${got}, want NaN`);
        continue;
      }
      const tol = REL[dtype] * Math.abs(want) + CANCEL * Math.abs(gate * up) + ABS[dtype];
      assert.ok(Math.abs(got - want) <= tol, `${what}: [${r}, ${c}] ${got}, want ${want} (±${tol})`);
    }
  }
}

describe('act_mul writing its output quantized for the down projection (kernels/elementwise.cu XQ)', () => {
  for (const dtype of DTYPES) {
    for (const form of ['q8', 'e4m3'] as const) {
      test(`${form}: SiLU and GELU (tanh), 1-8 rows and 14336 wide, bit for bit the separate launch and the CPU twin, the output float64's, outputs poisoned (${dtype})`, {
        skip,
      }, () => {
        const g = gpu(dtype);
        for (const [rows, n] of SHAPES[form]) {
          const x = inputs(rows, n, dtype);
          const gx = upload(g, [rows, 2 * n], x);
          const rounded = g.toHost(gx);
          for (const act of ['silu', 'gelu_tanh'] as const) {
            const what = `${act} ${rows}x${n}`;
            const out = checkProducer(g, what, form, rows, n, (f) => cuda(actMul(g.ctx, gx, act, f)));
            checkValues(what, out, rounded, rows, n, dtype, act);
          }
        }
      });
    }
  }
});

describe('the backend: linearActMul told what it feeds, and the down projection reading its copy', () => {
  for (const dtype of DTYPES) {
    test(`GGUF blocks: q8 written by act_mul on the integer GEMV route (1-8 rows), down's launch skipped, its output unchanged (${dtype})`, {
      skip,
    }, () => {
      const g = gpu(dtype);
      const [h, inter] = [256, 512];
      const gateUp = g.loadWeight({
        name: 'gate_up',
        shape: [2 * inter, h],
        dtype: 'q4_k',
        bytes: quantize('q4_k', randomValues(2 * inter * h, seed++), 'gate_up'),
      });
      const down = g.loadWeight({
        name: 'down',
        shape: [h, inter],
        dtype: 'q6_k',
        bytes: quantize('q6_k', randomValues(h * inter, seed++), 'down'),
      });
      for (const T of [1, 5, 8, 9]) {
        const gx = upload(g, [T, h], randomValues(T * h, seed++, 2, dtype));
        g.ctx.arena.reset();
        const integer = T <= 8 && quantGemvRoute(dtype) === 'q8';
        const fed = cuda(g.linearActMul(gx, gateUp, undefined, 'silu', down));
        assert.equal(fed.quantized?.form, integer ? 'q8' : undefined, `${T} rows: the form written`);
        const plain = g.linearActMul(gx, gateUp, undefined, 'silu');
        assert.deepEqual(g.toHost(fed), g.toHost(plain), `${T} rows: the gated product unchanged`);
        let fromCopy: Tensor | undefined;
        let fromOwn: Tensor | undefined;
        assert.equal(
          requestsOf(g, QUANT_ACT_Q8, () => (fromCopy = g.linear(fed, down))),
          0,
          `${T} rows: no own launch`,
        );
        const own = requestsOf(g, QUANT_ACT_Q8, () => (fromOwn = g.linear(plain, down)));
        assert.equal(own, integer ? 1 : 0, `${T} rows: the plain product is quantized by the linear`);
        assert.deepEqual(g.toHost(fromCopy!), g.toHost(fromOwn!), `${T} rows: the same output either way`);
      }
    });
  }

  for (const dtype of ['bf16', 'f16'] as const) {
    test(`FP8 weights: e4m3 written by act_mul past the gated GEMV (the GEMM's rows), fp8_quantize_rows skipped there, outputs unchanged (${dtype})`, {
      skip: noFp8,
    }, () => {
      const g = gpu(dtype);
      const [h, inter] = [256, 512];
      const fp8 = (name: string, m: number, k: number) => {
        const w = g.loadWeight(hostTensor(name, [m, k], randomValues(m * k, seed++, 0.1, dtype)), { quantize: 'fp8' });
        assert.ok(w instanceof Fp8CudaTensor);
        return w;
      };
      const [gateUp, down] = [fp8('gate_up', 2 * inter, h), fp8('down', h, inter)];
      for (const T of [1, FP8_GEMV_MAX_ROWS, 12, 37]) {
        const gx = upload(g, [T, h], randomValues(T * h, seed++, 2, dtype));
        g.ctx.arena.reset();
        // The gated GEMV writes act(gate) * up itself, no form (a row's scale spans its blocks); the GEMM's rows go
        // through act_mul, which writes it.
        const gemm = T > FP8_GEMV_MAX_ROWS || !g.linears.fp8Gemv;
        // The CUDA-core GEMV (one row, with the 'auto' route) reads x itself: down quantizes nothing either way.
        const reads16 = !gemm && fp8RouteFor(T, g.linears.fp8Gemv!) === 'cuda-cores';
        const fed = cuda(g.linearActMul(gx, gateUp, undefined, 'silu', down));
        assert.equal(fed.quantized?.form, gemm ? 'e4m3' : undefined, `${T} rows: the form written`);
        const plain = g.linearActMul(gx, gateUp, undefined, 'silu');
        assert.deepEqual(g.toHost(fed), g.toHost(plain), `${T} rows: the gated product unchanged`);
        let fromCopy: Tensor | undefined;
        const launches = requestsOf(g, FP8_QUANTIZE_ROWS, () => (fromCopy = g.linear(fed, down)));
        assert.equal(
          launches,
          gemm || reads16 ? 0 : 1,
          `${T} rows: down's own quantizing launch only without the copy`,
        );
        assert.deepEqual(g.toHost(fromCopy!), g.toHost(g.linear(plain, down)), `${T} rows: the same output`);
      }
    });
  }
});
