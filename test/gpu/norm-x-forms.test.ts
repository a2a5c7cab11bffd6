import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DType, Tensor } from '../../src/backend/backend.ts';
import { quantizeQ8Groups } from '../../src/backend/cpu/quant-act.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import type { CudaContext } from '../../src/backend/cuda/context.ts';
import { CudaDriver } from '../../src/backend/cuda/driver.ts';
import { FP8_QUANTIZE_ROWS, Fp8CudaTensor, hasFp8, quantizeRows } from '../../src/backend/cuda/fp8.ts';
import type { KernelDecl } from '../../src/backend/cuda/kernel.ts';
import { addRmsNorm, rmsNorm } from '../../src/backend/cuda/norm.ts';
import { QUANT_ACT_Q8 } from '../../src/backend/cuda/quant-kernels.ts';
import { quantizeActivationsInto } from '../../src/backend/cuda/quant-linear.ts';
import { quantGemvRoute } from '../../src/backend/cuda/quant-tensor.ts';
import { CudaTensor, cuda, DTYPE_BYTES } from '../../src/backend/cuda/tensor.ts';
import { allocQuantizedX, type QuantizedX, type XForm } from '../../src/backend/cuda/x-form.ts';
import { quantizeFp8Rows } from '../../src/primitives/fp8.ts';
import { quantize } from '../../src/primitives/quant/index.ts';
import { gpuSkip, hostTensor, randomValues } from '../helpers/gpu.ts';

// The RMSNorms that also write their output as the next linear reads it (kernels/norm.cu XQ): the quantized copy
// must be bit for bit what the linear's own quantizing launch writes from the norm's 16-bit output, and the 16-bit
// output must not change.

const skip = gpuSkip();
const noFp8 = skip || (!hasFp8(CudaDriver.open().info) && 'the GPU has no FP8 (compute capability < 8.9)');
const DTYPES: DType[] = ['bf16', 'f16', 'f32'];
const backends = new Map<DType, CudaBackend>();
function gpu(dtype: DType): CudaBackend {
  let b = backends.get(dtype);
  if (!b) {
    b = new CudaBackend({ dtype, graphs: false });
    backends.set(dtype, b);
  }
  return b;
}
let seed = (Date.now() & 0xffff) * 1000;

/**
 * Arena poison no quantized output holds: q8 bytes 0x80 (level -128, d a negative number, sums of -32640; levels
 * lie in ±127, d ≥ 0 or NaN, sums in ±2032); e4m3 bytes 0xff (the code -NaN, which quantization never writes, and a
 * NaN scale, which no row takes).
 */
const POISON: Record<XForm, number> = { q8: 0x80808080, e4m3: 0xffffffff };

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

/** Values rounded to the storage type, uploaded. */
function upload(g: CudaBackend, shape: number[], v: Float32Array): CudaTensor {
  return cuda(g.loadWeight(hostTensor('t', shape, v)));
}

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

function bytes(g: CudaBackend, ptr: bigint, n: number): Uint8Array {
  const out = new Uint8Array(n);
  g.ctx.drv.download(out, ptr);
  return out;
}

/** Bytes of the quantized copy: levels or codes, then scales. */
function quantizedBytes(g: CudaBackend, q: QuantizedX, rows: number, n: number) {
  return { xq: bytes(g, q.xq, rows * n), xs: bytes(g, q.xs, q.form === 'q8' ? (rows * n) / 4 : rows * 4) };
}

/** The linear's own quantizing launch over `out` into fresh arena buffers (poisoned as the arena is). */
function separately(g: CudaBackend, form: XForm, out: CudaTensor, rows: number, n: number): QuantizedX {
  const q = allocQuantizedX(g.ctx, form, rows, n);
  if (form === 'q8') quantizeActivationsInto(g.ctx, out.ptr, rows * n, q);
  else quantizeRows(g.ctx, q.xq, q.xs, out.ptr, rows, n);
  return q;
}

/** The first index where two byte arrays differ, -1 if none. */
const firstDiff = (a: Uint8Array, b: Uint8Array) => (a.length !== b.length ? 0 : a.findIndex((v, i) => v !== b[i]));

/** The quantized copy against the CPU twin of the norm's own output: levels, d (NaN as NaN) and sums; codes, scales. */
function checkTwin(form: XForm, got: { xq: Uint8Array; xs: Uint8Array }, out: Float32Array, rows: number, n: number) {
  if (form === 'q8') {
    const want = quantizeQ8Groups(out);
    const levels = new Int8Array(got.xq.buffer);
    const bad = levels.findIndex((l, i) => l !== want.levels[i]);
    assert.equal(bad, -1, `level ${bad}: ${levels[bad]}, the twin's ${want.levels[bad]}`);
    const view = new DataView(got.xs.buffer);
    for (let i = 0; i < want.d.length; i++) {
      const [d, sums] = [view.getFloat32(8 * i, true), view.getInt32(8 * i + 4, true)];
      assert.ok(Object.is(d, want.d[i]), `group ${i}: d ${d}, the twin's ${want.d[i]}`);
      assert.deepEqual([(sums << 16) >> 16, sums >> 16], [want.sums[2 * i], want.sums[2 * i + 1]], `group ${i}: sums`);
    }
    return;
  }
  const want = quantizeFp8Rows(out, rows, n);
  const bad = firstDiff(got.xq, want.codes);
  assert.equal(bad, -1, `code ${bad}: ${got.xq[bad]}, the twin's ${want.codes[bad]}`);
  assert.deepEqual(new Float32Array(got.xs.buffer), want.scales, 'row scales');
}

type Norm = (ctx: CudaContext, form: XForm | null) => Tensor;

/**
 * `norm` once plain and once writing `form`, in an arena poisoned with POISON[form]: the same 16-bit output, and its
 * quantized copy equal to the separate launch's over that output bit for bit, and to the CPU twin.
 */
function checkNorm(g: CudaBackend, what: string, form: XForm, rows: number, n: number, norm: Norm): void {
  g.ctx.arena.reset();
  g.ctx.arena.poison(POISON[form]);
  const size = rows * n * DTYPE_BYTES[g.ctx.dtype];
  const plain = cuda(norm(g.ctx, null));
  const fused = cuda(norm(g.ctx, form));
  assert.equal(plain.quantized, undefined, `${what}: the plain build writes no copy`);
  assert.equal(fused.quantized?.form, form, `${what}: the copy is attached to the output`);
  const outBytes = bytes(g, fused.ptr, size);
  assert.equal(firstDiff(outBytes, bytes(g, plain.ptr, size)), -1, `${what}: the 16-bit output is unchanged`);
  const got = quantizedBytes(g, fused.quantized!, rows, n);
  const want = quantizedBytes(g, separately(g, form, fused, rows, n), rows, n);
  assert.equal(firstDiff(got.xq, want.xq), -1, `${what}: levels/codes equal the separate launch's`);
  assert.equal(firstDiff(got.xs, want.xs), -1, `${what}: scales equal the separate launch's`);
  checkTwin(form, got, g.toHost(fused), rows, n);
}

describe('RMSNorms writing x quantized for the next linear (kernels/norm.cu XQ)', () => {
  for (const dtype of DTYPES) {
    for (const form of ['q8', 'e4m3'] as const) {
      test(`${form}: rmsNorm, Gemma's (1 + w) and addRmsNorm over a 16-bit and a float residual, bit for bit the separate launch and the CPU twin, outputs poisoned (${dtype})`, {
        skip,
      }, () => {
        const g = gpu(dtype);
        for (const [rows, n] of SHAPES[form]) {
          const { x, w } = inputs(rows, n, dtype);
          const gx = upload(g, [rows, n], x);
          const gw = upload(g, [n], w);
          const residuals = {
            '16-bit': upload(g, [rows, n], randomValues(rows * n, seed++, 2, dtype)),
            float: floatTensor(g, [rows, n], randomValues(rows * n, seed++, 2)),
          };
          const shape = `${rows}x${n}`;
          try {
            checkNorm(g, `rmsNorm ${shape}`, form, rows, n, (ctx, f) => rmsNorm(ctx, gx, gw, 1e-5, 0, f));
            checkNorm(g, `rmsNorm (1 + w) ${shape}`, form, rows, n, (ctx, f) => rmsNorm(ctx, gx, gw, 1e-6, 1, f));
            for (const [name, r] of Object.entries(residuals)) {
              checkNorm(g, `addRmsNorm (${name} residual) ${shape}`, form, rows, n, (ctx, f) => {
                return addRmsNorm(ctx, gx, r, gw, 1e-6, 0, f).out;
              });
            }
          } finally {
            g.ctx.drv.free(residuals.float.ptr);
          }
        }
      });
    }
  }
});

/** Counts the launches' requests of `decl` while `run` runs. */
function requestsOf(g: CudaBackend, decl: KernelDecl, run: () => void): number {
  const ctx = g.ctx;
  const original = ctx.kernel;
  let n = 0;
  ctx.kernel = ((d: KernelDecl, defines?: Record<string, number>) => {
    if (d === decl) n++;
    return original.call(ctx, d, defines);
  }) as typeof ctx.kernel;
  try {
    run();
  } finally {
    ctx.kernel = original;
  }
  return n;
}

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
    test(`FP8 weights: e4m3 written by the norm for the GEMV and the GEMM, fp8_quantize_rows skipped, outputs unchanged (${dtype})`, {
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
        assert.equal(fed.quantized?.form, 'e4m3', `${T} rows: the form written`);
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
