import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DType, KvCacheSpec, LayerKvCache, QkvHeads, Tensor } from '../../src/backend/backend.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { gemvShape } from '../../src/backend/cuda/gemv-config.ts';
import { kvOf } from '../../src/backend/cuda/kv-cache.ts';
import { GEMV_ROPE } from '../../src/backend/cuda/qkv-rope.ts';
import { ROPE } from '../../src/backend/cuda/rope.ts';
import { composedQkvRopeWriteKv } from '../../src/backend/qkv-rope.ts';
import type { HeadNorm, RopeSpec } from '../../src/backend/rope-spec.ts';
import { encodeAs } from '../../src/primitives/float-bits.ts';
import { buildStepBatch, type ScheduledChunk } from '../../src/runner/step-batch.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { backendPerDtype } from '../helpers/cuda-backends.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip, hostTensor, randomValues, relL2 } from '../helpers/gpu.ts';
import { loadAsGolden } from '../helpers/patched-model.ts';
import { greedyDecode, requestsOf } from '../helpers/x-forms.ts';

// gemv.cu's ROPE build (Backend.qkvRopeWriteKv on CUDA): the packed q/k/v GEMV with RoPE and the KV cache write as its
// epilogue, bit for bit the composition it replaces (the plain GEMV, the split, rope.cu with the cache write) and
// within rounding of a float64 reference.

const skip = gpuSkip();
const DTYPES: DType[] = ['bf16', 'f16'];
/** Relative L2 against float64: the GEMV's sum and the rotation are each rounded to the storage type. */
const TOL: Record<DType, number> = { f32: 1e-5, f16: 5e-3, bf16: 1e-2 };
const BLOCK_SIZE = 16;
const NUM_BLOCKS = 24;
/** K: a whole number of 16-byte vectors, but no whole number of a warp's (the loop's ragged end). */
const K = 264;

const gpu = backendPerDtype();
let seed = (Date.now() & 0xffff) * 1000;

/**
 * `rows` decode sequences at distinct random positions (up to 1000 per row: large angles), each token's block its
 * own (the blocks before it, never written by a decode step, all block 0); the second token's slot is -1.
 */
function decodeStep(g: CudaBackend, rows: number) {
  const r = mulberry32(seed++);
  const chunks = Array.from({ length: rows }, (_, i): ScheduledChunk => {
    const startPos = 1000 * i + Math.floor(r() * 1000);
    const blockTable = Array.from({ length: Math.ceil((startPos + 1) / BLOCK_SIZE) }, () => 0);
    blockTable[blockTable.length - 1] = 1 + i;
    return { tokenIds: [1], startPos, blockTable, logits: 'last' };
  });
  const batch = buildStepBatch(chunks, BLOCK_SIZE);
  if (rows > 1) batch.slotMapping[1] = -1;
  const step = g.beginStep(batch);
  g.ctx.arena.poison();
  return { batch, step };
}

/** Float64 of x wᵀ + bias, each q and k head's first `rot` dims rotated at its token's position: [q, k, v] per token. */
function reference(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  heads: QkvHeads,
  spec: RopeSpec,
  pos: Int32Array,
) {
  const { numHeads: Hq, numKvHeads: Hk, headDim: D } = heads;
  const m = (Hq + 2 * Hk) * D;
  const T = pos.length;
  const y = new Float64Array(T * m);
  for (let t = 0; t < T; t++)
    for (let c = 0; c < m; c++) {
      let s = bias ? bias[c]! : 0;
      for (let i = 0; i < K; i++) s += x[t * K + i]! * w[c * K + i]!;
      y[t * m + c] = s;
    }
  const half = spec.rotaryDim / 2;
  for (let t = 0; t < T; t++)
    for (let h = 0; h < Hq + Hk; h++) {
      const base = t * m + h * D;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(pos[t]! * spec.invFreq[i]!);
        const [c, s] = [Math.cos(angle) * spec.mscale, Math.sin(angle) * spec.mscale];
        const [a, b] = spec.style === 'neox' ? [base + i, base + i + half] : [base + 2 * i, base + 2 * i + 1];
        const [x0, x1] = [y[a]!, y[b]!];
        y[a] = x0 * c - x1 * s;
        y[b] = x1 * c + x0 * s;
      }
    }
  const part = (c0: number, width: number) =>
    Float64Array.from({ length: T * width }, (_, i) => y[Math.floor(i / width) * m + c0 + (i % width)]!);
  return [part(0, Hq * D), part(Hq * D, Hk * D), part((Hq + Hk) * D, Hk * D)];
}

/** An arena tensor holding `values` (already storage-type values). */
function upload(g: CudaBackend, shape: number[], values: Float32Array): Tensor {
  const t = g.ctx.empty(shape);
  g.ctx.drv.upload(t.ptr, encodeAs(values, g.ctx.dtype));
  return t;
}

function assertSame(got: Float32Array, want: Float32Array, what: string): void {
  const bad = got.findIndex((v, i) => !Object.is(v, want[i]));
  assert.equal(bad, -1, `${what}: [${bad}] ${got[bad]}, the composition's ${want[bad]} (seed base ${seed})`);
}

interface Shape {
  dtype: DType;
  heads: QkvHeads;
}

/** Every RoPE style, rotary width, bias or none and 1/2/4 rows over one fresh weight of this shape. */
function checkShape({ dtype, heads }: Shape): void {
  const g = gpu(dtype);
  const { numHeads: Hq, numKvHeads: Hk, headDim: D } = heads;
  const m = (Hq + 2 * Hk) * D;
  const wv = randomValues(m * K, seed++, 1 / Math.sqrt(K), dtype);
  const bv = randomValues(m, seed++, 0.5, dtype);
  const w = g.loadWeight(hostTensor('qkv', [m, K], wv));
  const b = g.loadWeight(hostTensor('qkv_bias', [m], bv));
  const kvSpec = { numLayers: 2, numBlocks: NUM_BLOCKS, blockSize: BLOCK_SIZE, numKvHeads: Hk, headDim: D };
  for (const style of ['neox', 'gptj'] as const)
    for (const rotaryDim of [D, D / 2])
      for (const withBias of [false, true])
        for (const rows of [1, 2, 4]) {
          const invFreq = new Float32Array(rotaryDim / 2).map((_, i) => 1 / 1e4 ** ((2 * i) / rotaryDim));
          // YaRN's attention factor on the GPT-J pairs.
          const rope: RopeSpec = { invFreq, mscale: style === 'gptj' ? 1.15 : 1, style, rotaryDim };
          const what = `${Hq}/${Hk} heads of ${D}, ${style} rot ${rotaryDim}, ${withBias ? 'bias' : 'no bias'}, ${rows} rows (${dtype})`;
          const { batch, step } = decodeStep(g, rows);
          const xv = randomValues(rows * K, seed++, 1, dtype);
          const x = upload(g, [rows, K], xv);
          const bias = withBias ? b : undefined;
          const [fusedKv, composedKv] = g.allocKvCache(kvSpec) as [LayerKvCache, LayerKvCache];
          let fused: Tensor[] = [];
          const launches = requestsOf(g, GEMV_ROPE, () => {
            fused = g.qkvRopeWriteKv(x, w, bias, heads, rope, fusedKv, step);
          });
          assert.equal(launches, 1, `${what}: the fused launch`);
          const composed = composedQkvRopeWriteKv(g, x, w, bias, heads, rope, composedKv, step);
          const want = reference(xv, wv, withBias ? bv : null, heads, rope, batch.positions);
          ['q', 'k', 'v'].forEach((name, i) => {
            const got = g.toHost(fused[i]!);
            assertSame(got, g.toHost(composed[i]!), `${what}: ${name}`);
            const e = relL2(got, want[i]!);
            assert.ok(
              e <= TOL[dtype],
              `${what}: ${name} relative L2 ${e} > ${TOL[dtype]} against float64 (seed base ${seed})`,
            );
          });
          for (const side of ['k', 'v'] as const) {
            const got = g.toHost(kvOf(fusedKv)[side]);
            assertSame(got, g.toHost(kvOf(composedKv)[side]), `${what}: ${side} cache`);
            const written = [...batch.slotMapping].filter((s) => s >= 0).length;
            const set = got.filter((v) => !Number.isNaN(v)).length;
            assert.equal(set, written * Hk * D, `${what}: ${side} cache elements written (slot -1 skipped)`);
          }
          g.releaseKvCaches();
        }
}

describe('the q/k/v GEMV with RoPE and the KV cache write (gemv.cu ROPE build)', () => {
  for (const dtype of DTYPES) {
    test(`bit for bit the GEMV, split and ropeWriteKv; float64 reference: head_dim 64/96/128/256, GQA 32/8 and 16/8, neox and GPT-J, partial rotary, bias, 1/2/4 rows, a slot -1 (${dtype})`, {
      skip,
    }, () => {
      for (const headDim of [64, 96, 128, 256])
        for (const [numHeads, numKvHeads] of [
          [32, 8],
          [16, 8],
        ] as const)
          checkShape({ dtype, heads: { numHeads, numKvHeads, headDim } });
    });
  }

  test('bit for bit the composition at every GEMV configuration the table may pick: split 1/2/4/8, 1/2/4 weight rows, unroll 2/4, streamed or not', {
    skip,
  }, () => {
    const g = gpu('bf16');
    const heads = { numHeads: 8, numKvHeads: 2, headDim: 128 };
    const m = 12 * 128;
    // 513 16-byte vectors a row: every one of 8 split parts has work, and the loop's end is ragged.
    const k = 4104;
    const w = g.loadWeight(hostTensor('qkv', [m, k], randomValues(m * k, seed++, 1 / Math.sqrt(k), 'bf16')));
    const b = g.loadWeight(hostTensor('qkv_bias', [m], randomValues(m, seed++, 0.5, 'bf16')));
    const invFreq = new Float32Array(64).map((_, i) => 1 / 1e4 ** (i / 64));
    const rope: RopeSpec = { invFreq, mscale: 1, style: 'neox', rotaryDim: 128 };
    const kvSpec = { numLayers: 2, numBlocks: NUM_BLOCKS, blockSize: BLOCK_SIZE, numKvHeads: 2, headDim: 128 };
    const table = g.linears.gemvTable;
    const configs = [
      { split: 1, rows: 1, unroll: 2 },
      { split: 2, rows: 4, unroll: 4 },
      { split: 4, rows: 2, unroll: 2, stream: true },
      { split: 8, rows: 1, unroll: 4 },
    ];
    try {
      for (const cfg of configs)
        for (const rows of [1, 4]) {
          const shape = gemvShape(rows, m, k, false);
          const entry = { ...shape, ...cfg, us: 1, cublasltUs: 2 };
          g.linears.gemvTable = {
            device: g.ctx.drv.info.name,
            smCount: g.ctx.drv.info.smCount,
            measured: 'test',
            entries: [entry],
          };
          const what = `${JSON.stringify(cfg)}, ${rows} rows`;
          const { step } = decodeStep(g, rows);
          const x = upload(g, [rows, k], randomValues(rows * k, seed++, 1, 'bf16'));
          const [fusedKv, composedKv] = g.allocKvCache(kvSpec) as [LayerKvCache, LayerKvCache];
          let fused: Tensor[] = [];
          const launches = requestsOf(g, GEMV_ROPE, () => {
            fused = g.qkvRopeWriteKv(x, w, b, heads, rope, fusedKv, step);
          });
          assert.equal(launches, 1, `${what}: the fused launch`);
          const composed = composedQkvRopeWriteKv(g, x, w, b, heads, rope, composedKv, step);
          for (const [i, name] of ['q', 'k', 'v'].entries())
            assertSame(g.toHost(fused[i]!), g.toHost(composed[i]!), `${what}: ${name}`);
          for (const side of ['k', 'v'] as const)
            assertSame(g.toHost(kvOf(fusedKv)[side]), g.toHost(kvOf(composedKv)[side]), `${what}: ${side} cache`);
          g.releaseKvCaches();
        }
    } finally {
      g.linears.gemvTable = table;
    }
  });

  test('where it does not apply (rows past the GEMV, a quantized cache, a head norm) the composition runs', {
    skip,
  }, () => {
    const g = gpu('bf16');
    const heads = { numHeads: 4, numKvHeads: 2, headDim: 64 };
    const m = 8 * 64;
    const w = g.loadWeight(hostTensor('qkv', [m, K], randomValues(m * K, seed++, 1 / Math.sqrt(K), 'bf16')));
    const invFreq = new Float32Array(32).map((_, i) => 1 / 1e4 ** (i / 32));
    const rope: RopeSpec = { invFreq, mscale: 1, style: 'neox', rotaryDim: 64 };
    const kvSpec = { numLayers: 1, numBlocks: NUM_BLOCKS, blockSize: BLOCK_SIZE, numKvHeads: 2, headDim: 64 };
    const ones = () => g.loadWeight(hostTensor('norm', [64], new Float32Array(64).fill(1)));
    const cases: [string, number, KvCacheSpec, HeadNorm | undefined][] = [
      ['16 rows', 16, kvSpec, undefined],
      ['an fp8 cache', 1, { ...kvSpec, quant: 'fp8' }, undefined],
      ['a head norm', 1, kvSpec, { eps: 1e-6, weightOffset: 0, q: ones(), k: ones() }],
    ];
    for (const [what, rows, spec, norm] of cases) {
      const { step } = decodeStep(g, rows);
      const x = upload(g, [rows, K], randomValues(rows * K, seed++, 1, 'bf16'));
      const kv = g.allocKvCache(spec)[0]!;
      let fused = -1;
      const ropes = requestsOf(g, ROPE, () => {
        fused = requestsOf(g, GEMV_ROPE, () => g.qkvRopeWriteKv(x, w, undefined, heads, rope, kv, step, norm));
      });
      assert.equal(fused, 0, what);
      assert.equal(ropes, 1, `${what}: rope.cu`);
      g.releaseKvCaches();
    }
  });

  test('a Llama decode step launches no rope kernel: the q/k/v GEMV applies it, once a layer', {
    skip: skip || modelFixture('tiny-llama').skip,
  }, () => {
    const backend = new CudaBackend({ dtype: 'bf16', graphs: false });
    const model = loadAsGolden(modelFixture('tiny-llama').path, backend);
    const layers = model.kvShape.numLayers;
    const prompts = [
      [1, 5, 9, 13],
      [2, 6, 10],
    ];
    const steps = 3;
    assert.equal(greedyDecode(backend, model, prompts, steps, ROPE).launches, 0);
    assert.equal(greedyDecode(backend, model, prompts, steps, GEMV_ROPE).launches, layers * steps);
    backend.release();
  });
});
