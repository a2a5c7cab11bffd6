import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { ADD } from '../../src/backend/cuda/elementwise.ts';
import { ADD_RMS_NORM, addRmsNorm, RMS_NORM, rmsNorm } from '../../src/backend/cuda/norm.ts';
import { CudaTensor, cuda } from '../../src/backend/cuda/tensor.ts';
import { loadModelConfig } from '../../src/loader/hf-config.ts';
import { bf16Bits, f16Bits, halfToFloat } from '../../src/primitives/float-bits.ts';
import { backendPerDtype } from '../helpers/cuda-backends.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip, randomValues, relL2 } from '../helpers/gpu.ts';
import { PagedSession } from '../helpers/paged-session.ts';
import { loadAsGolden } from '../helpers/patched-model.ts';
import { bytes, firstDiff, requestsOf, upload } from '../helpers/x-forms.ts';

// add_rms_norm's NORM_X build (Gemma 2/3's sandwich norm and the next norm in one launch): residual += rmsNorm(x, xw)
// rounded to the storage type, then out = rmsNorm(residual, w). Against a float64 reference of the two-op sequence
// with that rounding, and bit for bit against the two launches it replaces.

const skip = gpuSkip();
const gpu = backendPerDtype();
let seed = (Date.now() & 0xffff) * 1000 + 700;
const EPS = 1e-6;
/**
 * How many values may round to the other neighbour than float64 does (float32 sums, rsqrtf): about 2^-11 of them in
 * f16, 2^-14 in bf16; without the rounding of x's norm nearly all would differ.
 */
const rare = (count: number) => Math.max(8, count / 128);
/** 3584: gemma-2-9b; 2304: gemma-2-2b; 1000 ragged (no whole warp of values); 10007 ragged past the registers (8,192). */
const SHAPES = [
  [1, 3584],
  [4, 3584],
  [1, 2304],
  [3, 1000],
  [2, 10007],
  [40, 256],
] as const;
/** Relative L2 of the output against the reference: a few values a step apart (see `rare`). */
const TOL: Record<'bf16' | 'f16', number> = { bf16: 1e-3, f16: 2e-4 };

const roundTo = (dtype: 'bf16' | 'f16', v: number) =>
  dtype === 'bf16'
    ? new Float32Array(new Uint32Array([bf16Bits(v) << 16]).buffer)[0]!
    : halfToFloat(f16Bits(Math.fround(v)));
/** The storage type's unit in the last place at |v| (subnormal steps below the smallest normal). */
const ulp = (dtype: 'bf16' | 'f16', v: number) => {
  const [mantissa, minExp] = dtype === 'bf16' ? [7, -126] : [10, -14];
  return 2 ** (Math.max(Math.floor(Math.log2(Math.abs(v) || 2 ** minExp)), minExp) - mantissa);
};

/** float64 RMSNorm of a row times (offset + w) (offset + w in float32, as the kernel adds it), rounded to `dtype`. */
function normRow(dtype: 'bf16' | 'f16', row: ArrayLike<number>, w: Float32Array, offset: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < row.length; i++) ss += row[i]! * row[i]!;
  const inv = 1 / Math.sqrt(ss / row.length + EPS);
  return Float64Array.from(w, (wi, i) => roundTo(dtype, row[i]! * inv * Math.fround(offset + wi)));
}

/** The two-op sequence in float64: the norm of x rounded to the storage type, added, the sum normed and rounded. */
function reference(
  dtype: 'bf16' | 'f16',
  rows: number,
  n: number,
  inputs: Record<string, Float32Array>,
  offset: number,
) {
  const { x, residual, xw, w } = inputs as Record<'x' | 'residual' | 'xw' | 'w', Float32Array>;
  const normed = new Float64Array(rows * n);
  const sum = new Float64Array(rows * n);
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const at = r * n;
    normed.set(normRow(dtype, x.subarray(at, at + n), xw, offset), at);
    for (let i = 0; i < n; i++) sum[at + i] = residual[at + i]! + normed[at + i]!;
    out.set(normRow(dtype, sum.subarray(at, at + n), w, offset), at);
  }
  return { normed, sum, out };
}

/** A float32 tensor outside the arena (the residual stream as addRmsNorm leaves it); `free` when done. */
function floatTensor(g: CudaBackend, shape: number[], v: Float32Array): CudaTensor {
  const p = g.ctx.drv.alloc(v.byteLength);
  g.ctx.drv.upload(p, v);
  return new CudaTensor(shape, 'f32', p);
}

describe("addRmsNorm with x's own norm (kernels/norm.cu NORM_X)", () => {
  for (const dtype of ['bf16', 'f16'] as const) {
    test(`against a float64 reference of rmsNorm then addRmsNorm, and the two launches (the residual bit for bit), outputs poisoned (${dtype})`, {
      skip,
    }, () => {
      const g = gpu(dtype);
      for (const [rows, n] of SHAPES) {
        for (const [offset, residualIn] of [
          [1, 'float'],
          [1, '16-bit'],
          [0, 'float'],
        ] as const) {
          const what = `${rows}x${n}, offset ${offset}, ${residualIn} residual`;
          const host = {
            x: randomValues(rows * n, seed++, 3, dtype),
            // A 16-bit residual is the embeddings (stored values); the float stream holds any float.
            residual: randomValues(rows * n, seed++, 2, residualIn === 'float' ? 'f32' : dtype),
            // Gemma's weights sit near 0 (it scales by 1 + w); offset 0 takes weights of either sign.
            xw: randomValues(n, seed++, offset ? 0.3 : 1.5, dtype),
            w: randomValues(n, seed++, offset ? 0.3 : 1.5, dtype),
          };
          g.ctx.arena.reset();
          const [gx, gxw, gw] = [upload(g, [rows, n], host.x), upload(g, [n], host.xw), upload(g, [n], host.w)];
          const gr =
            residualIn === 'float' ? floatTensor(g, [rows, n], host.residual) : upload(g, [rows, n], host.residual);
          try {
            g.ctx.arena.poison();
            const fused = addRmsNorm(g.ctx, gx, gr, gw, EPS, offset, null, gxw);
            const got = { out: g.toHost(fused.out), residual: g.toHost(fused.residual) };
            const want = reference(dtype, rows, n, host, offset);
            // The residual: exact where the float32 and float64 norms of x round alike, else one step of x's norm.
            let normDiffers = 0;
            for (let i = 0; i < rows * n; i++) {
              const d = Math.abs(got.residual[i]! - want.sum[i]!);
              const slack = 2 ** -23 * Math.abs(want.sum[i]!);
              if (d <= slack) continue;
              normDiffers++;
              assert.ok(
                d <= ulp(dtype, want.normed[i]!) + slack,
                `${what}: residual ${i}: ${got.residual[i]} vs ${want.sum[i]}`,
              );
            }
            assert.ok(normDiffers <= rare(rows * n), `${what}: ${normDiffers} residuals off the reference`);
            let outDiffers = 0;
            for (let i = 0; i < rows * n; i++) {
              assert.ok(Number.isFinite(got.out[i]!), `${what}: out ${i} is ${got.out[i]} (unwritten?)`);
              if (Math.abs(got.out[i]! - want.out[i]!) > ulp(dtype, want.out[i]!)) outDiffers++;
            }
            assert.ok(
              outDiffers <= normDiffers + rare(rows * n),
              `${what}: ${outDiffers} outputs off by more than a step`,
            );
            const e = relL2(got.out, want.out);
            assert.ok(e <= TOL[dtype], `${what}: out relative L2 ${e} > ${TOL[dtype]}`);
            // The two launches it replaces: rms_norm's stored output, then add_rms_norm.
            const twoOps = addRmsNorm(g.ctx, rmsNorm(g.ctx, gx, gxw, EPS, offset), gr, gw, EPS, offset);
            // The output: the two launches' values, but for a rare one step of the output type (an H100 gave one
            // element of 2,304 in bf16: the row's 1/rms a float step apart flips a rounding).
            const [a, b] = [g.toHost(fused.out), g.toHost(twoOps.out)];
            let stepsOff = 0;
            for (let i = 0; i < rows * n; i++) {
              if (a[i] === b[i]) continue;
              stepsOff++;
              assert.ok(Math.abs(a[i]! - b[i]!) <= ulp(dtype, b[i]!), `${what}: out ${i}: ${a[i]} vs ${b[i]}`);
            }
            assert.ok(stepsOff <= rare(rows * n), `${what}: ${stepsOff} outputs off the two launches'`);
            const resDiff = firstDiff(
              bytes(g, cuda(fused.residual).ptr, rows * n * 4),
              bytes(g, cuda(twoOps.residual).ptr, rows * n * 4),
            );
            assert.equal(resDiff, -1, `${what}: residual equals the two launches' bit for bit`);
          } finally {
            if (residualIn === 'float') g.ctx.drv.free(gr.ptr);
          }
        }
      }
    });
  }
});

const gemma2 = modelFixture('tiny-gemma2');
describe('Gemma 2 on CUDA: the sandwich norms fused', () => {
  test('a step launches one plain rms_norm (the first input norm), no add, and add_rms_norm twice per layer', {
    skip: skip || gemma2.skip,
  }, () => {
    const g = new CudaBackend({ dtype: 'bf16', graphs: false });
    try {
      const session = new PagedSession(loadAsGolden(gemma2.path, g), 16);
      const layers = loadModelConfig(gemma2.path).numLayers;
      // A prefill, then a decode step.
      for (const tokens of [[2, 17, 40, 9, 3], [11]]) {
        let [add, fused] = [0, 0];
        const rms = requestsOf(g, RMS_NORM, () => {
          add = requestsOf(g, ADD, () => {
            fused = requestsOf(g, ADD_RMS_NORM, () => session.step([{ seq: 0, tokens }]));
          });
        });
        assert.deepEqual({ rms, add, fused }, { rms: 1, add: 0, fused: 2 * layers }, `${tokens.length} tokens`);
      }
    } finally {
      g.release();
    }
  });
});
