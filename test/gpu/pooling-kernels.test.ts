import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AttentionSpec, DType } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { POOLING_MODES } from '../../src/primitives/pooling.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { gpuSkip, hostTensor, randomValues, relL2 } from '../helpers/gpu.ts';
import { referenceSelfAttention } from '../helpers/self-attention-reference.ts';

// The embedding models' kernels (kernels/pooling.cu, tanh, token-type embeddings, attention with no cache) against
// the CPU twin or a float64 reference, on fresh random inputs, with the activation arena poisoned (NaN) first.
const skip = gpuSkip();
const TOL: Record<DType, number> = { f32: 2e-5, f16: 5e-3, bf16: 1e-2 };
const DTYPES: DType[] = ['f32', 'bf16', 'f16'];
const backends = new Map<DType, CudaBackend>();
const gpu = (dtype: DType) => {
  let b = backends.get(dtype);
  if (!b) backends.set(dtype, (b = new CudaBackend({ dtype, graphs: false })));
  return b;
};
const cpu = new CpuBackend({ threads: 1 });
let seed = (Date.now() & 0xffff) * 1000;

/** Ragged whole sequences of random lengths in [1, max] (one of exactly 1 token). */
function lengths(n: number, max: number): number[] {
  const r = mulberry32(seed++);
  return [1, ...Array.from({ length: n - 1 }, () => 1 + Math.floor(r() * max))];
}

function check(dtype: DType, what: string, got: Float32Array, want: ArrayLike<number>, tol = TOL[dtype]) {
  const e = relL2(got, want);
  assert.ok(e <= tol, `${what} (${dtype}): relative L2 ${e} > ${tol} (seed base ${seed})`);
}

describe('pooling-model kernels on CUDA', () => {
  for (const dtype of DTYPES) {
    test(`pool (every mode), l2Normalize and tanh match the CPU twin (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      for (const hidden of [64, 300, 1024]) {
        const batch = buildPoolingBatch(lengths(9, 40).map((n) => ({ tokenIds: new Array(n).fill(0) })));
        const T = batch.inputIds.length;
        const x = hostTensor('x', [T, hidden], randomValues(T * hidden, seed++, 2, dtype));
        const [gx, cx] = [g.loadWeight(x), cpu.loadWeight(x)];
        const gs = g.beginStep(batch);
        g.ctx.arena.poison();
        const cs = cpu.beginStep(batch);
        for (const mode of POOLING_MODES) {
          check(dtype, `pool ${mode} ${hidden}`, g.toHost(g.pool(gx, gs, mode)), cpu.toHost(cpu.pool(cx, cs, mode)));
        }
        check(dtype, `l2Normalize ${hidden}`, g.toHost(g.l2Normalize(gx)), cpu.toHost(cpu.l2Normalize(cx)));
        check(dtype, `tanh ${hidden}`, g.toHost(g.tanh(gx)), cpu.toHost(cpu.tanh(cx)));
      }
    });

    test(`token-type embeddings, and zeros for a batch without types (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      const table = hostTensor('types', [2, 96], randomValues(192, seed++, 1, dtype));
      const [gt, ct] = [g.loadWeight(table), cpu.loadWeight(table)];
      for (const typed of [true, false]) {
        const r = mulberry32(seed++);
        const inputs = lengths(5, 30).map((n) => ({
          tokenIds: new Array(n).fill(1),
          tokenTypeIds: typed ? Array.from({ length: n }, () => (r() < 0.5 ? 0 : 1)) : undefined,
        }));
        const batch = buildPoolingBatch(inputs);
        const gs = g.beginStep(batch);
        g.ctx.arena.poison();
        const want = cpu.toHost(cpu.embedding(ct, cpu.beginStep(batch), 'tokenTypes'));
        check(dtype, `token types (typed ${typed})`, g.toHost(g.embedding(gt, gs, 'tokenTypes')), want, 0);
      }
    });

    // Head size 16 takes the simple kernel's no-cache build; 64 and 128 the flash kernel's in 16-bit storage.
    for (const causal of [false, true]) {
      test(`selfAttention (${causal ? 'causal' : 'bidirectional'}) against float64: GQA, head sizes 16/64/128, up to 600 tokens (${dtype})`, {
        skip,
      }, () => {
        const g = gpu(dtype);
        for (const [heads, kvHeads, D] of [
          [4, 4, 16],
          [12, 12, 64],
          [16, 8, 128],
          [8, 2, 64],
        ] as const) {
          const batch = buildPoolingBatch(
            [...lengths(6, 200), 600, 129].map((n) => ({ tokenIds: new Array(n).fill(0) })),
          );
          const T = batch.inputIds.length;
          const spec: AttentionSpec = {
            numHeads: heads,
            numKvHeads: kvHeads,
            headDim: D,
            scale: 1 / Math.sqrt(D),
            slidingWindow: 0,
            causal,
          };
          const make = (h: number) => hostTensor('x', [T, h * D], randomValues(T * h * D, seed++, 1, dtype));
          const [q, k, v] = [make(heads), make(kvHeads), make(kvHeads)];
          const [gq, gk, gv] = [q, k, v].map((t) => g.loadWeight(t));
          const gs = g.beginStep(batch);
          g.ctx.arena.poison();
          const got = g.toHost(g.selfAttention(gq!, gk!, gv!, spec, gs));
          const f32 = (t: typeof q) => new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 4);
          const want = referenceSelfAttention(f32(q), f32(k), f32(v), batch.cuSeqlensQ, spec);
          check(dtype, `selfAttention ${heads}/${kvHeads}x${D}`, got, want);
        }
      });
    }
  }
});
