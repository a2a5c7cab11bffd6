import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DType, Tensor } from '../../src/backend/backend.ts';
import type { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { FP8_QUANTIZE_ROWS, Fp8CudaTensor, hasFp8 } from '../../src/backend/cuda/fp8.ts';
import { fp8InputForm } from '../../src/backend/cuda/fp8-linear.ts';
import { addRmsNorm, rmsNorm } from '../../src/backend/cuda/norm.ts';
import { QUANT_ACT_Q8 } from '../../src/backend/cuda/quant-kernels.ts';
import { quantGemvRoute } from '../../src/backend/cuda/quant-tensor.ts';
import { CudaTensor, cuda } from '../../src/backend/cuda/tensor.ts';
import type { XForm } from '../../src/backend/cuda/x-form.ts';
import { quantize } from '../../src/primitives/quant/index.ts';
import { backendPerDtype } from '../helpers/cuda-backends.ts';
import { gpuSkip, hostTensor, randomValues } from '../helpers/gpu.ts';
import { checkProducer, requestsOf, upload } from '../helpers/x-forms.ts';

// The RMSNorms that also write their output as the next linear reads it (kernels/norm.cu XQ): the quantized copy
// must be bit for bit what the linear's own quantizing launch writes from the norm's 16-bit output, and the 16-bit
// output must not change.

const skip = gpuSkip();
const noFp8 = skip || (!hasFp8(CudaDriver.open().info) && 'the GPU has no FP8 (compute capability < 8.9)');
const DTYPES: DType[] = ['bf16', 'f16', 'f32'];
const gpu = backendPerDtype();
let seed = (Date.now() & 0xffff) * 1000;

/**
 * Rows up to 4096 keep their values in registers; 14336 (Llama-3-8B's MLP width, 1,024 threads of 8) also goes round
 * through memory. 96: a single warp. e4m3 needs 16-value rows only: 272 (not a multiple of 32) is its own.
 */
const SHAPES: Record<XForm, [number, number][]> = {
  q8: [
    [1, 4096],
    [5, 512],
    [3, 96],
    [2, 14336],
    [40, 1024],
  ],
  e4m3: [
    [1, 4096],
    [5, 512],
    [3, 96],
    [2, 14336],
    [4, 272],
  ],
};

/**
 * x `[rows, n]` and a norm weight with the edge cases of the activation-quantization tests, where the row is wide
 * enough to keep ordinary groups too: the weight zero over the first 32 values (a zero group: d 0, levels 0) and tiny
 * over the next 32 (d below float's smallest normal: levels 0; f16 outputs flush to 0), NaN at value 70 (its group's
 * d NaN; e4m3: the NaN skipped by the row's amax, coded 0x7f); row 1 of x all zeros (outputs 0, e4m3 scale 1), row 2
 * with a NaN (every output of the row NaN).
 */
function inputs(rows: number, n: number, dtype: DType) {
  const x = randomValues(rows * n, seed++, 3, dtype);
  const w = randomValues(n, seed++, 1, dtype);
  if (n >= 272) {
    w.fill(0, 0, 32);
    for (let i = 32; i < 64; i++) w[i]! *= 1e-37;
    w[70] = Number.NaN;
  }
  if (rows > 1) x.fill(0, n, 2 * n);
  if (rows > 2) x[2 * n + 5] = Number.NaN;
  return { x, w };
}

/** A float32 tensor outside the arena (the residual stream as addRmsNorm leaves it); `free` when done. */
function floatTensor(g: CudaBackend, shape: number[], v: Float32Array): CudaTensor {
  const p = g.ctx.drv.alloc(v.byteLength);
  g.ctx.drv.upload(p, v);
  return new CudaTensor(shape, 'f32', p);
}

describe('RMSNorms writing x quantized for the next linear (kernels/norm.cu XQ)', () => {
  for (const dtype of DTYPES) {
    for (const form of ['q8', 'e4m3'] as const) {
      test(`${form}: rmsNorm, Gemma's (1 + w) and addRmsNorm over a 16-bit and a float residual (also with x's own norm: NORM_X), bit for bit the separate launch and the CPU twin, outputs poisoned (${dtype})`, {
        skip,
      }, () => {
        const g = gpu(dtype);
        for (const [rows, n] of SHAPES[form]) {
          const { x, w } = inputs(rows, n, dtype);
          const gx = upload(g, [rows, n], x);
          const gw = upload(g, [n], w);
          // Gemma 2/3's sandwich norm of x (weights near 0: it scales by 1 + w).
          const gxw = upload(g, [n], randomValues(n, seed++, 0.3, dtype));
          const residuals = {
            '16-bit': upload(g, [rows, n], randomValues(rows * n, seed++, 2, dtype)),
            float: floatTensor(g, [rows, n], randomValues(rows * n, seed++, 2)),
          };
          const shape = `${rows}x${n}`;
          try {
            checkProducer(g, `rmsNorm ${shape}`, form, rows, n, (f) => cuda(rmsNorm(g.ctx, gx, gw, 1e-5, 0, f)));
            checkProducer(g, `rmsNorm (1 + w) ${shape}`, form, rows, n, (f) =>
              cuda(rmsNorm(g.ctx, gx, gw, 1e-6, 1, f)),
            );
            for (const [name, r] of Object.entries(residuals)) {
              checkProducer(g, `addRmsNorm (${name} residual) ${shape}`, form, rows, n, (f) => {
                return cuda(addRmsNorm(g.ctx, gx, r, gw, 1e-6, 0, f).out);
              });
              checkProducer(g, `addRmsNorm with x's (1 + w) norm (${name} residual) ${shape}`, form, rows, n, (f) =>
                cuda(addRmsNorm(g.ctx, gx, r, gw, 1e-6, 1, f, gxw).out),
              );
            }
          } finally {
            g.ctx.drv.free(residuals.float.ptr);
          }
        }
      });
    }
  }
});

describe('the backend: a norm told what it feeds, and the linear reading its copy', () => {
  for (const dtype of DTYPES) {
    test(`GGUF blocks: q8 written by the norm on the integer GEMV route (1-8 rows), the linear's launch skipped, its output unchanged (${dtype})`, {
      skip,
    }, () => {
      const g = gpu(dtype);
      const [m, k] = [96, 512];
      const wq = g.loadWeight({
        name: 'w',
        shape: [m, k],
        dtype: 'q4_k',
        bytes: quantize('q4_k', randomValues(m * k, seed++), 'w'),
      });
      const gw = upload(g, [k], randomValues(k, seed++, 1, dtype));
      for (const T of [1, 5, 8, 9]) {
        const gx = upload(g, [T, k], randomValues(T * k, seed++, 2, dtype));
        g.ctx.arena.reset();
        const integer = T <= 8 && quantGemvRoute(dtype) === 'q8';
        const fed = cuda(g.rmsNorm(gx, gw, 1e-5, 0, wq));
        assert.equal(fed.quantized?.form, integer ? 'q8' : undefined, `${T} rows: the form written`);
        const plain = g.rmsNorm(gx, gw, 1e-5);
        let fromCopy: Tensor | undefined;
        let fromOwn: Tensor | undefined;
        const launches = requestsOf(g, QUANT_ACT_Q8, () => {
          fromCopy = g.linear(fed, wq);
        });
        assert.equal(launches, 0, `${T} rows: no quantizing launch of its own`);
        const own = requestsOf(g, QUANT_ACT_Q8, () => {
          fromOwn = g.linear(plain, wq);
        });
        assert.equal(own, integer ? 1 : 0, `${T} rows: the plain norm's output is quantized by the linear`);
        assert.deepEqual(g.toHost(fromCopy!), g.toHost(fromOwn!), `${T} rows: the same output either way`);
      }
    });
  }

  for (const dtype of ['bf16', 'f16'] as const) {
    test(`FP8 weights: e4m3 written by the norm for the tensor-core GEMV and the GEMM, fp8_quantize_rows skipped, outputs unchanged (${dtype})`, {
      skip: noFp8,
    }, () => {
      const g = gpu(dtype);
      const [m, k] = [96, 512];
      const w = g.loadWeight(hostTensor('w', [m, k], randomValues(m * k, seed++, 0.1, dtype)), { quantize: 'fp8' });
      assert.ok(w instanceof Fp8CudaTensor);
      const gw = upload(g, [k], randomValues(k, seed++, 1, dtype));
      for (const T of [1, 8, 12]) {
        const gx = upload(g, [T, k], randomValues(T * k, seed++, 2, dtype));
        g.ctx.arena.reset();
        const fed = cuda(g.addRmsNorm(gx, gx, gw, 1e-5, 0, w).out);
        // The CUDA-core GEMV's rows (one, with the 'auto' route) read x itself: no form.
        const form = fp8InputForm(T, g.linears.fp8Gemv) ?? undefined;
        assert.equal(fed.quantized?.form, form, `${T} rows: the form written`);
        const plain = g.addRmsNorm(gx, gx, gw, 1e-5).out;
        let fromCopy: Tensor | undefined;
        const launches = requestsOf(g, FP8_QUANTIZE_ROWS, () => {
          fromCopy = g.linearActMul(fed, w, undefined, 'silu');
        });
        assert.equal(launches, 0, `${T} rows: no quantizing launch of its own`);
        const want = g.toHost(g.linearActMul(plain, w, undefined, 'silu'));
        assert.deepEqual(g.toHost(fromCopy!), want, `${T} rows: the same output as from x quantized by the linear`);
      }
    });
  }
});
