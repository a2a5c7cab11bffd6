import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AttentionSpec, Backend, DType, SamplingRow, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { pagedOf } from '../../src/backend/cpu/step-context.ts';
import { CpuTensor } from '../../src/backend/cpu/tensor.ts';
import type { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { gemvShape } from '../../src/backend/cuda/gemv-config.ts';
import { kvOf } from '../../src/backend/cuda/kv-cache.ts';
import { cuda, DTYPE_BYTES, decodeFrom } from '../../src/backend/cuda/tensor.ts';
import type { RopeSpec } from '../../src/backend/rope-spec.ts';
import { encodeAs } from '../../src/primitives/float-bits.ts';
import { buildStepBatch, type ScheduledChunk } from '../../src/runner/step-batch.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { backendPerDtype } from '../helpers/cuda-backends.ts';
import { gpuSkip, hostTensor, randomValues, relL2 } from '../helpers/gpu.ts';
import { shuffled } from '../helpers/paged-session.ts';
import { referenceScores } from '../helpers/sampling-reference.ts';
import { plainRow } from '../helpers/sampling-rows.ts';

const skip = gpuSkip();
/** Relative L2 allowed against the f32 CPU twin: f32 storage, and 16-bit storage (inputs already 16-bit values). */
const TOL: Record<DType, number> = { f32: 2e-5, f16: 5e-3, bf16: 1e-2 };
const DTYPES: DType[] = ['f32', 'bf16', 'f16'];

const gpu = backendPerDtype();
/** The same with every attention through the simple kernel (`--flash-attention 0`). */
const simpleGpu = backendPerDtype({ simpleAttention: true });
const cpu = new CpuBackend();
let seed = (Date.now() & 0xffff) * 1000;
const freshSeed = () => seed++;

/** The same random tensor on both backends. */
function pair(g: Backend, shape: number[], dtype: DType, scale = 1): [Tensor, Tensor, Float32Array] {
  const v = randomValues(
    shape.reduce((a, d) => a * d, 1),
    freshSeed(),
    scale,
    dtype,
  );
  const h = hostTensor('x', shape, v);
  return [g.loadWeight(h), cpu.loadWeight(h), v];
}

function check(dtype: DType, what: string, got: Float32Array, want: Float32Array, tol = TOL[dtype]): void {
  const e = relL2(got, want);
  assert.ok(e <= tol, `${what} (${dtype}): relative L2 ${e} > ${tol} (seed base ${seed})`);
}

/** A step on both backends; the GPU arena is poisoned after the upload so unwritten outputs show as NaN. */
function steps(g: CudaBackend, chunks: ScheduledChunk[], blockSize: number) {
  const batch = buildStepBatch(chunks, blockSize);
  const gs = g.beginStep(batch);
  g.ctx.arena.poison();
  return { batch, gs, cs: cpu.beginStep(batch) };
}

function decodeChunks(n: number, blockSize: number): ScheduledChunk[] {
  const r = mulberry32(freshSeed());
  let next = 0;
  return Array.from({ length: n }, () => {
    const len = 1 + Math.floor(r() * 40);
    const blocks = Math.ceil(len / blockSize);
    const table = Array.from({ length: blocks }, () => next++);
    return { tokenIds: [Math.floor(r() * 100)], startPos: len - 1, blockTable: table, logits: 'last' as const };
  });
}

describe('CUDA kernels against the CPU backend', () => {
  for (const dtype of DTYPES) {
    test(`embedding rows by token and by position, and logit-row gather (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      const [gt, ct] = pair(g, [200, 96], dtype);
      const { gs, cs } = steps(g, decodeChunks(7, 16), 16);
      for (const index of ['tokens', 'positions'] as const) {
        check(
          dtype,
          `embedding ${index}`,
          g.toHost(g.embedding(gt, gs, index)),
          cpu.toHost(cpu.embedding(ct, cs, index)),
          0,
        );
      }
      const [gx, cx] = pair(g, [7, 130], dtype);
      check(dtype, 'gather', g.toHost(g.gatherLogitRows(gx, gs)), cpu.toHost(cpu.gatherLogitRows(cx, cs)), 0);
    });

    test(`linear with and without bias, ragged shapes (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      for (const [T, n, m] of [
        [1, 64, 48],
        [7, 96, 130],
        [33, 256, 512],
        [300, 128, 1000],
        [3, 100, 70],
        [8, 4096, 1024],
        [5, 512, 3000],
      ] as const) {
        const [gx, cx] = pair(g, [T, n], dtype);
        const [gw, cw] = pair(g, [m, n], dtype, 0.2);
        const [gb, cb] = pair(g, [m], dtype);
        g.ctx.arena.reset();
        g.ctx.arena.poison();
        check(dtype, `linear ${T}x${n}x${m}`, g.toHost(g.linear(gx, gw)), cpu.toHost(cpu.linear(cx, cw)));
        check(dtype, `linear+bias ${T}x${n}x${m}`, g.toHost(g.linear(gx, gw, gb)), cpu.toHost(cpu.linear(cx, cw, cb)));
      }
    });

    test(`rmsNorm, addRmsNorm (both outputs) and layerNorm (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      for (const [rows, n] of [
        [1, 64],
        [5, 1000],
        [3, 4096],
        [40, 32],
      ] as const) {
        const [gx, cx] = pair(g, [rows, n], dtype);
        const [gr, cr] = pair(g, [rows, n], dtype);
        const [gw, cw] = pair(g, [n], dtype);
        const [gb, cb] = pair(g, [n], dtype);
        g.ctx.arena.reset();
        g.ctx.arena.poison();
        check(dtype, `rmsNorm ${rows}x${n}`, g.toHost(g.rmsNorm(gx, gw, 1e-5)), cpu.toHost(cpu.rmsNorm(cx, cw, 1e-5)));
        check(dtype, 'layerNorm', g.toHost(g.layerNorm(gx, gw, gb, 1e-5)), cpu.toHost(cpu.layerNorm(cx, cw, cb, 1e-5)));
        const go = g.addRmsNorm(gx, gr, gw, 1e-6);
        const co = cpu.addRmsNorm(cx, cr, cw, 1e-6);
        check(dtype, 'addRmsNorm out', g.toHost(go.out), cpu.toHost(co.out));
        check(dtype, 'addRmsNorm residual', g.toHost(go.residual), cpu.toHost(co.residual));
        // The float residual stream feeds the next addRmsNorm and the final add.
        const go2 = g.addRmsNorm(gx, go.residual, gw, 1e-6);
        const co2 = cpu.addRmsNorm(cx, co.residual, cw, 1e-6);
        check(dtype, 'addRmsNorm over a float residual', g.toHost(go2.out), cpu.toHost(co2.out));
        check(
          dtype,
          'add of a float residual',
          g.toHost(g.add(gx, go2.residual)),
          cpu.toHost(cpu.add(cx, co2.residual)),
        );
      }
    });

    test(`Gemma's (1 + w) rmsNorm and addRmsNorm, the offset added in float (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      for (const [rows, n] of [
        [1, 2304],
        [7, 1000],
        [33, 256],
      ] as const) {
        const [gx, cx] = pair(g, [rows, n], dtype);
        const [gr, cr] = pair(g, [rows, n], dtype);
        // Weights near 0, as Gemma's are: 1 + w rounded to the storage type would lose most of w.
        const [gw, cw] = pair(g, [n], dtype, 0.01);
        g.ctx.arena.reset();
        g.ctx.arena.poison();
        const want = cpu.toHost(cpu.rmsNorm(cx, cw, 1e-6, 1));
        check(dtype, `rmsNorm (1 + w) ${rows}x${n}`, g.toHost(g.rmsNorm(gx, gw, 1e-6, 1)), want);
        const go = g.addRmsNorm(gx, gr, gw, 1e-6, 1);
        const co = cpu.addRmsNorm(cx, cr, cw, 1e-6, 1);
        check(dtype, 'addRmsNorm (1 + w) out', g.toHost(go.out), cpu.toHost(co.out));
        check(dtype, 'addRmsNorm (1 + w) residual', g.toHost(go.residual), cpu.toHost(co.residual));
      }
    });

    test(`scale (the factor rounded to the storage type, or kept in float) and softcap (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      // sqrt(3584) = 59.87 is 59.75 in bf16 (steps of 0.25 there): the CPU twin is handed the rounded factor.
      const factor = Math.sqrt(3584);
      const rounded = g.toHost(g.loadWeight(hostTensor('f', [1], Float32Array.of(factor))))[0]!;
      if (dtype === 'bf16') assert.equal(rounded, 59.75);
      for (const n of [1, 1000, 70001]) {
        const [gx, cx] = pair(g, [n], dtype, 40);
        g.ctx.arena.reset();
        g.ctx.arena.poison();
        check(dtype, `scale ${n}`, g.toHost(g.scale(gx, factor)), cpu.toHost(cpu.scale(cx, rounded)));
        // 0.37 is 0.369140625 in bf16: a float factor gives the float32 product, rounded once to storage, exactly.
        const once = decodeFrom(encodeAs(cpu.toHost(cpu.scale(cx, 0.37)), dtype), dtype);
        assert.deepEqual(g.toHost(g.scale(gx, 0.37, 'float')), once, `scale ${n} by a float factor (${dtype})`);
        check(dtype, `softcap ${n}`, g.toHost(g.softcap(gx, 30)), cpu.toHost(cpu.softcap(cx, 30)));
      }
    });

    test(`add and the plain activations: GELU tanh and erf, ReLU² (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      for (const n of [1, 1000, 70001]) {
        const [ga, ca, xa] = pair(g, [n], dtype, 4);
        const [gb, cb] = pair(g, [n], dtype, 4);
        g.ctx.arena.reset();
        g.ctx.arena.poison();
        check(dtype, `add ${n}`, g.toHost(g.add(ga, gb)), cpu.toHost(cpu.add(ca, cb)));
        for (const act of ['gelu_tanh', 'gelu', 'relu2'] as const) {
          const got = g.toHost(g.activation(ga, act));
          const want = cpu.toHost(cpu.activation(ca, act));
          if (dtype !== 'f32') {
            check(dtype, `${act} ${n}`, got, want);
            continue;
          }
          // Float32 against f64 Math, element by element: 0.5 x (1 + tanh) and erf's form cancel for negative x, so
          // a float's few ulps of 1 become |x| * 1e-7 absolute there, however small the value (one element made a
          // relative L2 bound fail on such an x); elsewhere a few ulps of the value.
          got.forEach((v, i) => {
            const bound = 1e-5 * Math.abs(want[i]!) + 1e-6 * Math.abs(xa[i]!);
            assert.ok(
              Math.abs(v - want[i]!) <= bound,
              `${act} ${n} (f32) at ${i}: x ${xa[i]}, ${v} against ${want[i]} (seed base ${seed})`,
            );
          });
        }
      }
    });

    test(`actMul (SiLU and GELU-tanh) over rows of packed [gate | up] (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      for (const act of ['silu', 'gelu_tanh'] as const) {
        for (const [T, n] of [
          [1, 1],
          [1, 14336],
          [5, 1000],
          [37, 333],
        ] as const) {
          const [gx, cx, v] = pair(g, [T, 2 * n], dtype, 4);
          g.ctx.arena.reset();
          g.ctx.arena.poison();
          const got = g.actMul(gx, act);
          assert.deepEqual(got.shape, [T, n]);
          const want = cpu.toHost(cpu.actMul(cx, act));
          if (act === 'silu') check(dtype, `actMul ${act} ${T}x${n}`, g.toHost(got), want);
          else {
            // GELU-tanh's 1 + tanh(z) cancels for gates below about -3: the float formula (PyTorch's too) keeps an
            // error of about an ulp of gate · up there, however small the result. Measured against that size.
            const terms = Float32Array.from(want, (_, i) => {
              const row = Math.floor(i / n);
              return v[2 * row * n + (i % n)]! * v[(2 * row + 1) * n + (i % n)]!;
            });
            const l2 = (a: Float32Array) => Math.sqrt(a.reduce((sum, x) => sum + x * x, 0));
            const e = l2(g.toHost(got).map((x, i) => x - want[i]!)) / l2(terms);
            assert.ok(
              e <= TOL[dtype],
              `actMul ${act} ${T}x${n} (${dtype}): error ${e} of |gate · up| (seed base ${seed})`,
            );
          }
        }
      }
    });

    test(`linearActMul (the gated GEMV, or linear + actMul, as the GEMV table and rule pick) (${dtype})`, {
      skip,
    }, () => {
      const g = gpu(dtype);
      for (const [T, n, I, biased, act] of [
        [1, 64, 48, false, 'gelu_tanh'],
        [2, 256, 130, true, 'gelu_tanh'],
        [40, 256, 100, true, 'gelu_tanh'],
        [1, 64, 48, false],
        [2, 4096, 1000, false],
        [3, 96, 130, false],
        [4, 256, 333, false],
        [5, 512, 64, false],
        [6, 128, 7, false],
        [7, 4096, 1536, false],
        [8, 1024, 2048, false],
        [1, 128, 100, true],
        [5, 512, 300, true],
        [33, 256, 300, false],
        [40, 256, 100, true],
        [300, 128, 100, false],
      ] as const) {
        const [gx, cx] = pair(g, [T, n], dtype);
        const [gw, cw] = pair(g, [2 * I, n], dtype, 0.2);
        const [gb, cb] = biased ? pair(g, [2 * I], dtype) : [undefined, undefined];
        g.ctx.arena.reset();
        g.ctx.arena.poison();
        const a = act ?? 'silu';
        const got = g.linearActMul(gx, gw, gb, a);
        assert.deepEqual(got.shape, [T, I]);
        const want = cpu.toHost(cpu.linearActMul(cx, cw, cb, a));
        check(dtype, `linearActMul ${a} ${T}x${n}x${I}`, g.toHost(got), want);
      }
    });

    test(`the GEMV's sweep knobs (split, rows per warp, unroll) on ragged shapes (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      const configs = [
        { split: 8, rows: 4, unroll: 2 },
        { split: 2, rows: 2, unroll: 8 },
        { split: 1, rows: 4, unroll: 4 },
      ];
      for (const [T, n, m] of [
        [1, 264, 1003],
        [6, 4096, 130],
      ] as const) {
        const [gx, cx] = pair(g, [T, n], dtype);
        const [gw, cw] = pair(g, [2 * m, n], dtype, 0.2);
        const want = cpu.toHost(cpu.linear(cx, cw));
        const wantGated = cpu.toHost(cpu.linearActMul(cx, cw, undefined, 'silu'));
        for (const config of configs) {
          g.ctx.arena.reset();
          g.ctx.arena.poison();
          const y = g.ctx.empty([T, 2 * m]);
          g.linears.gemvInto(y.ptr, cuda(gx).ptr, cuda(gw).ptr, T, 2 * m, n, { config });
          check(dtype, `gemv ${T}x${n}x${2 * m} ${JSON.stringify(config)}`, g.toHost(y), want);
          const z = g.ctx.empty([T, m]);
          g.linears.gemvInto(z.ptr, cuda(gx).ptr, cuda(gw).ptr, T, m, n, { gated: true, config });
          check(dtype, `gated gemv ${T}x${n}x${m} ${JSON.stringify(config)}`, g.toHost(z), wantGated);
        }
      }
    });

    test(`the GEMV at 2..32 rows where the table measured it faster: linear with and without bias, linearActMul (${dtype})`, {
      skip,
    }, () => {
      const g = gpu(dtype);
      // [T, n, m, split, rows]: TMAX 2 to 32, each split (1: no shared-memory reduction) and rows per warp; odd m
      // leaves the last group of 4 rows part full.
      const cases = [
        [2, 512, 77, 8, 2],
        [3, 264, 100, 4, 4],
        [4, 1024, 513, 4, 2],
        [6, 256, 96, 8, 1],
        [8, 4096, 131, 2, 4],
        [9, 256, 131, 2, 4],
        [16, 4096, 64, 8, 2],
        [17, 512, 1003, 1, 1],
        [32, 1024, 48, 4, 4],
        [31, 264, 200, 8, 1],
      ] as const;
      const saved = g.linears.gemvTable;
      const direct = g.linears.gemvInto.bind(g.linears);
      let launches = 0;
      let gatedLaunches = 0;
      g.linears.gemvTable = {
        device: g.ctx.drv.info.name,
        smCount: g.ctx.drv.info.smCount,
        measured: 'test',
        entries: cases.flatMap(([T, n, m, split, rows]) => [
          { ...gemvShape(T, 2 * m, n, false), split, rows, unroll: 4, us: 1, cublasltUs: 2 },
          { ...gemvShape(T, m, n, true), split, rows: 1, unroll: 2, us: 1, cublasltUs: 2 },
        ]),
      };
      g.linears.gemvInto = (...args) => {
        launches++;
        if (args[6]?.gated) gatedLaunches++;
        direct(...args);
      };
      try {
        for (const [T, n, m] of cases) {
          const [gx, cx] = pair(g, [T, n], dtype);
          const [gw, cw] = pair(g, [2 * m, n], dtype, 0.2);
          const [gb, cb] = pair(g, [2 * m], dtype);
          g.ctx.arena.reset();
          g.ctx.arena.poison();
          const what = `${T}x${n}x${m}`;
          check(dtype, `gemv linear ${what}`, g.toHost(g.linear(gx, gw)), cpu.toHost(cpu.linear(cx, cw)));
          check(dtype, `gemv linear+bias ${what}`, g.toHost(g.linear(gx, gw, gb)), cpu.toHost(cpu.linear(cx, cw, cb)));
          const gated = cpu.toHost(cpu.linearActMul(cx, cw, undefined, 'silu'));
          check(dtype, `gated gemv ${what}`, g.toHost(g.linearActMul(gx, gw, undefined, 'silu')), gated);
          const gatedBias = cpu.toHost(cpu.linearActMul(cx, cw, cb, 'gelu_tanh'));
          check(dtype, `gated gemv+bias gelu ${what}`, g.toHost(g.linearActMul(gx, gw, gb, 'gelu_tanh')), gatedBias);
        }
        assert.equal(launches, 4 * cases.length, 'every product went through the GEMV');
        assert.equal(gatedLaunches, 2 * cases.length, 'linearActMul went through the gated GEMV');
        // A shape the table does not name stays on cuBLASLt above 4 rows.
        const [gx, cx] = pair(g, [16, 256], dtype);
        const [gw, cw] = pair(g, [96, 256], dtype, 0.2);
        check(dtype, 'linear 16x256x96 (cuBLASLt)', g.toHost(g.linear(gx, gw)), cpu.toHost(cpu.linear(cx, cw)));
        assert.equal(launches, 4 * cases.length);
      } finally {
        g.linears.gemvTable = saved;
        g.linears.gemvInto = direct;
      }
    });

    test(`splitColumns: one row as views at byte offsets, more rows copied in one launch per four parts (${dtype})`, {
      skip,
    }, () => {
      const g = gpu(dtype);
      for (const [T, sizes] of [
        [1, [4096, 1024, 1024]],
        [1, [7, 130, 1, 64, 3]],
        [2, [96, 32, 32]],
        [33, [7, 130, 1, 64, 3]],
        [300, [64, 16, 16]],
      ] as const) {
        const width = sizes.reduce((a, d) => a + d, 0);
        const [gx, cx, values] = pair(g, [T, width], dtype);
        g.ctx.arena.reset();
        g.ctx.arena.poison();
        const got = g.splitColumns(gx, sizes);
        const want = cpu.splitColumns(cx, sizes);
        let start = 0;
        sizes.forEach((size, p) => {
          const part = cuda(got[p]!);
          assert.deepEqual(part.shape, [T, size]);
          if (T === 1) {
            assert.equal(part.ptr, cuda(gx).ptr + BigInt(start * DTYPE_BYTES[dtype]), `part ${p} is a view`);
          }
          check(dtype, `splitColumns ${T}x[${sizes}] part ${p}`, g.toHost(part), cpu.toHost(want[p]!), 0);
          start += size;
        });
        assert.deepEqual(g.toHost(gx), values, 'the input is left as it was');
      }
    });

    test(`rope neox and gptj, partial rotary, mscale, large positions (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      for (const [style, D, rot, mscale] of [
        ['neox', 128, 128, 1],
        ['gptj', 64, 64, 1],
        ['neox', 64, 32, 1.2],
        ['gptj', 16, 8, 1],
        // Phi-4-mini (head 128, rotary 96, LongRoPE's attention factor) and Phi-3-mini (head 96)
        ['neox', 128, 96, 1.19],
        ['neox', 96, 96, 1],
      ] as const) {
        const invFreq = new Float32Array(rot / 2).map((_, i) => 1 / 500000 ** ((2 * i) / rot));
        const spec: RopeSpec = { invFreq, mscale, style, rotaryDim: rot };
        const chunks: ScheduledChunk[] = [
          { tokenIds: [1, 2, 3], startPos: 0, blockTable: [0], logits: 'last' },
          { tokenIds: [4], startPos: 70000, blockTable: Array(Math.ceil(70001 / 16)).fill(1), logits: 'last' },
        ];
        const { gs, cs } = steps(g, chunks, 16);
        const [gq, cq] = pair(g, [4, 8 * D], dtype);
        const [gk, ck] = pair(g, [4, 2 * D], dtype);
        g.rope(gq, gk, D, spec, gs);
        cpu.rope(cq, ck, D, spec, cs);
        // Angles near 7e4 rad: float32 argument reduction differs by ulps, so allow a little more here.
        check(dtype, `rope ${style} q`, g.toHost(gq), cpu.toHost(cq), dtype === 'f32' ? 2e-4 : TOL[dtype]);
        check(dtype, `rope ${style} k`, g.toHost(gk), cpu.toHost(ck), dtype === 'f32' ? 2e-4 : TOL[dtype]);
      }
    });

    test(`ropeWriteKv equals rope then writeKv: q, k and both caches (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      for (const [Hq, Hk, D, rot] of [
        [8, 2, 128, 128],
        [4, 4, 64, 32],
        [6, 2, 128, 96],
      ] as const) {
        const invFreq = new Float32Array(rot / 2).map((_, i) => 1 / 10000 ** ((2 * i) / rot));
        const spec: RopeSpec = { invFreq, mscale: 1, style: 'neox', rotaryDim: rot };
        const kvSpec = { numLayers: 1, numBlocks: 12, blockSize: 16, numKvHeads: Hk, headDim: D };
        const gkv = g.allocKvCache(kvSpec)[0]!;
        const ckv = cpu.allocKvCache(kvSpec)[0]!;
        const chunks: ScheduledChunk[] = [
          { tokenIds: [1, 2, 3, 4, 5], startPos: 0, blockTable: [7], logits: 'last' },
          { tokenIds: [6], startPos: 40, blockTable: [3, 9, 1], logits: 'last' },
          { tokenIds: [7, 8], startPos: 15, blockTable: [4, 10], logits: 'last' },
        ];
        const { batch, gs, cs } = steps(g, chunks, 16);
        const T = batch.inputIds.length;
        const [gq, cq] = pair(g, [T, Hq * D], dtype);
        const [gk, ck] = pair(g, [T, Hk * D], dtype);
        const [gv, cv] = pair(g, [T, Hk * D], dtype);
        g.ropeWriteKv(gq, gk, gv, spec, gkv, gs);
        cpu.ropeWriteKv(cq, ck, cv, spec, ckv, cs);
        const what = `ropeWriteKv ${Hq}/${Hk} hd ${D} rot ${rot}`;
        check(dtype, `${what} q`, g.toHost(gq), cpu.toHost(cq));
        check(dtype, `${what} k`, g.toHost(gk), cpu.toHost(ck));
        const slots = [...batch.slotMapping];
        const rows = [kvSpec.numBlocks * kvSpec.blockSize, Hk * D];
        for (const side of ['k', 'v'] as const) {
          const got = g.toHost(g.view(kvOf(gkv)[side], rows), slots);
          check(
            dtype,
            `${what} ${side} cache`,
            got,
            cpu.toHost(new CpuTensor(rows, pagedOf(ckv)[side].data as Float32Array), slots),
            side === 'v' ? 0 : TOL[dtype],
          );
          // The cache was poisoned (NaN) at allocation: nothing but the step's slots was written.
          const written = g.toHost(kvOf(gkv)[side]).filter((x) => !Number.isNaN(x)).length;
          assert.equal(written, T * Hk * D, `${what}: ${side} cache elements written`);
        }
      }
    });

    for (const [Hq, Hk, D] of [
      [4, 4, 64],
      [8, 2, 128],
      [16, 2, 64],
      [8, 1, 128],
      [4, 2, 16],
      [8, 4, 256],
      // Multi-query attention's wide groups (StarCoder, Granite Code): 32 and 24 query heads per KV head.
      [32, 1, 64],
      [48, 2, 128],
    ] as const) {
      test(`writeKv + paged attention, GQA ${Hq}/${Hk}, head_dim ${D}, ragged prefill/chunk/decode (${dtype})`, {
        skip,
      }, () => {
        // Groups wider than the simple kernel's 16 query heads a block also through it alone (split over blockIdx.z).
        for (const g of Hq / Hk > 16 ? [gpu(dtype), simpleGpu(dtype)] : [gpu(dtype)]) {
          // A soft-cap of 0.5 bends these scores (about +-1) visibly, in the flash and the simple kernels alike.
          for (const [blockSize, window, softcap] of [
            [16, 0, 0],
            [4, 0, 0],
            [16, 7, 0],
            [16, 0, 0.5],
            [16, 7, 0.5],
          ] as const) {
            const spec: AttentionSpec = {
              numHeads: Hq,
              numKvHeads: Hk,
              headDim: D,
              scale: 1 / Math.sqrt(D),
              slidingWindow: window,
              softcap,
            };
            const numBlocks = 200;
            const gkv = g.allocKvCache({ numLayers: 1, numBlocks, blockSize, numKvHeads: Hk, headDim: D })[0]!;
            const ckv = cpu.allocKvCache({ numLayers: 1, numBlocks, blockSize, numKvHeads: Hk, headDim: D })[0]!;
            const free = shuffled(numBlocks, freshSeed());
            // (cached prefix, new tokens): a fresh prompt, a chunk after a prefix that is not block aligned, decodes
            // at and across block boundaries, and a one-token prompt.
            const shapes = [
              [0, 37],
              [13, 20],
              [blockSize - 1, 1],
              [blockSize, 1],
              [45, 1],
              [0, 1],
            ];
            const tables = shapes.map(([p, n]) =>
              Array.from({ length: Math.ceil((p! + n!) / blockSize) }, () => free.pop()!),
            );
            // Step 1 writes the cached prefixes; step 2 writes the new tokens and attends.
            for (const phase of [0, 1]) {
              const chunks: ScheduledChunk[] = shapes
                .map(([p, n], s) => ({
                  tokenIds: Array(phase === 0 ? p! : n!).fill(1),
                  startPos: phase === 0 ? 0 : p!,
                  blockTable: tables[s]!,
                  logits: 'last' as const,
                }))
                .filter((c) => c.tokenIds.length > 0);
              const { batch, gs, cs } = steps(g, chunks, blockSize);
              const T = batch.inputIds.length;
              const [gk, ck] = pair(g, [T, Hk * D], dtype);
              const [gv, cv] = pair(g, [T, Hk * D], dtype);
              g.writeKv(gk, gv, gkv, gs);
              cpu.writeKv(ck, cv, ckv, cs);
              if (phase === 0) continue;
              const [gq, cq] = pair(g, [T, Hq * D], dtype);
              const what = `attention bs ${blockSize} window ${window} softcap ${softcap}`;
              check(
                dtype,
                what,
                g.toHost(g.attention(gq, gkv, spec, gs)),
                cpu.toHost(cpu.attention(cq, ckv, spec, cs)),
              );
            }
          }
        }
      });
    }

    test(`copyKvBlocks copies whole blocks in every layer (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      const spec = { numLayers: 2, numBlocks: 8, blockSize: 4, numKvHeads: 2, headDim: 16 };
      const gkv = g.allocKvCache(spec);
      const ckv = cpu.allocKvCache(spec);
      const chunks: ScheduledChunk[] = [
        { tokenIds: Array(32).fill(1), startPos: 0, blockTable: [0, 1, 2, 3, 4, 5, 6, 7], logits: 'last' },
      ];
      const { gs, cs } = steps(g, chunks, 4);
      for (let l = 0; l < 2; l++) {
        const [gk, ck] = pair(g, [32, 32], dtype);
        const [gv, cv] = pair(g, [32, 32], dtype);
        g.writeKv(gk, gv, gkv[l]!, gs);
        cpu.writeKv(ck, cv, ckv[l]!, cs);
      }
      const src = Int32Array.from([1, 6]);
      const dst = Int32Array.from([3, 0]);
      g.copyKvBlocks(gkv, src, dst);
      cpu.copyKvBlocks(ckv, src, dst);
      for (let l = 0; l < 2; l++) {
        check(dtype, 'copied K', g.toHost(kvOf(gkv[l]!).k), pagedOf(ckv[l]!).k.data as Float32Array, 0);
        check(dtype, 'copied V', g.toHost(kvOf(gkv[l]!).v), pagedOf(ckv[l]!).v.data as Float32Array, 0);
      }
    });

    test(`sampling on the device matches the reference sampler (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      const V = 3000;
      const R = 9;
      const [gl, , values] = pair(g, [R, V], dtype, 4);
      const r = mulberry32(freshSeed());
      const seen = Int32Array.from({ length: 40 }, (_, i) => i * 7);
      const base = plainRow(0.8, Math.floor(r() * 2 ** 40), 3);
      const rows: SamplingRow[] = [
        { ...base, temperature: 0 },
        {
          ...base,
          temperature: 0,
          repetitionPenalty: 1.3,
          presencePenalty: 0.5,
          frequencyPenalty: 0.2,
          seenTokens: seen,
          seenCounts: seen.map((_, i) => i % 3),
        },
        { ...base },
        { ...base, topK: 20 },
        { ...base, topP: 0.5 },
        { ...base, topK: 50, topP: 0.9, minP: 0.05 },
        { ...base, minP: 0.2, temperature: 1.5 },
        { ...base, logitBias: { 5: 100 } },
        { ...base, topK: 1, temperature: 2 },
      ];
      const ids = g.sampleTokens(gl, rows);
      rows.forEach((row, k) => {
        const { kept, score } = referenceScores(values.subarray(k * V, (k + 1) * V), row);
        const id = ids[k]!;
        assert.ok(kept[id], `row ${k}: sampled id ${id} is outside the kept set`);
        let best = Number.NEGATIVE_INFINITY;
        score.forEach((s, i) => {
          if (kept[i] && s > best) best = s;
        });
        assert.ok(
          best - score[id]! <= 1e-3 * Math.max(1, Math.abs(best)),
          `row ${k}: id ${id} scores ${score[id]}, best ${best}`,
        );
      });
      assert.equal(ids[7], 5, 'a +100 logit bias wins');
      assert.deepEqual(g.sampleTokens(gl, rows), ids, 'same seeds and steps give the same ids');
      const later = g.sampleTokens(
        gl,
        rows.map((row) => ({ ...row, step: row.step + 1 })),
      );
      assert.notDeepEqual(later.slice(2, 7), ids.slice(2, 7), 'another step draws other ids');
      // A subset of rows, in another order, each read from the logits row it names (the engine's mixed steps);
      // out-of-vocabulary bias ids change nothing.
      const picked = [6, 0, 3, 3];
      const subset = picked.map((k) => ({
        ...rows[k]!,
        logitRow: k,
        logitBias: { ...rows[k]!.logitBias, [V + 5]: 50 },
      }));
      assert.deepEqual(
        [...g.sampleTokens(gl, subset)],
        picked.map((k) => ids[k]!),
        'rows sampled by logitRow',
      );
    });

    test(`structured-output bitmasks on the device: only allowed ids, as the reference (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      const V = 3000;
      const R = 6;
      const [gl, , values] = pair(g, [R, V], dtype, 4);
      const r = mulberry32(freshSeed());
      const words = Math.ceil(V / 32);
      // Random sparse masks (about 1 id in 50), one with a single allowed id, one that stops at id 2016 (a grammar
      // vocabulary shorter than the model's: nothing past it is allowed), and an unmasked row between them.
      const masks = Array.from({ length: R }, (_, k) => {
        const m = new Int32Array(k === 3 ? 63 : words);
        if (k === 2) m[1234 >> 5] = 1 << (1234 & 31);
        else {
          const end = k === 3 ? 2016 : V;
          for (let i = 0; i < end; i++) if (r() < 0.02) m[i >> 5]! |= 1 << (i & 31);
        }
        return m;
      });
      // Row 3's bias pulls toward an id past its mask.
      const biases: Record<number, Record<number, number>> = { 1: { 7: 100 }, 3: { 2500: 100 } };
      const rows: SamplingRow[] = masks.map((m, k) => ({
        ...plainRow(k % 2 === 0 ? 0 : 1, Math.floor(r() * 2 ** 40), k),
        topK: k === 5 ? 5 : 0,
        logitBias: biases[k],
        allowedTokens: k === 4 ? undefined : m,
      }));
      const ids = g.sampleTokens(gl, rows);
      rows.forEach((row, k) => {
        const id = ids[k]!;
        if (row.allowedTokens)
          assert.ok((row.allowedTokens[id >> 5]! >>> (id & 31)) & 1, `row ${k}: id ${id} is masked`);
        const { kept, score } = referenceScores(values.subarray(k * V, (k + 1) * V), row);
        assert.ok(kept[id], `row ${k}: id ${id} is outside the reference's kept set`);
        let best = Number.NEGATIVE_INFINITY;
        score.forEach((s, i) => {
          if (kept[i] && s > best) best = s;
        });
        assert.ok(best - score[id]! <= 1e-3 * Math.max(1, Math.abs(best)), `row ${k}: id ${id} is not the best`);
      });
      assert.equal(ids[2], 1234, 'the one allowed id');
      assert.ok(ids[3]! < 2016, `row 3: id ${ids[3]} past its mask`);
      // Row 3 alone: the masks are 63 words wide, so the kernel itself must refuse every id past them.
      const [alone] = g.sampleTokens(gl, [{ ...rows[3]!, logitRow: 3 }]);
      assert.ok(alone! < 2016 && (masks[3]![alone! >> 5]! >>> (alone! & 31)) & 1, `row 3 alone: id ${alone}`);
    });
  }
});
