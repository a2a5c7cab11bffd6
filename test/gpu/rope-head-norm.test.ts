import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DType, LayerKvCache, Tensor } from '../../src/backend/backend.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { kvOf } from '../../src/backend/cuda/kv-cache.ts';
import { RMS_NORM, rmsNorm } from '../../src/backend/cuda/norm.ts';
import { ROPE } from '../../src/backend/cuda/rope.ts';
import type { CudaTensor } from '../../src/backend/cuda/tensor.ts';
import type { HeadNorm, RopeSpec } from '../../src/backend/rope-spec.ts';
import { encodeAs } from '../../src/primitives/float-bits.ts';
import { buildStepBatch, type ScheduledChunk } from '../../src/runner/step-batch.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { backendPerDtype } from '../helpers/cuda-backends.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { gpuSkip, randomValues, relL2 } from '../helpers/gpu.ts';
import { loadAsGolden } from '../helpers/patched-model.ts';
import { greedyDecode } from '../helpers/x-forms.ts';

// Qwen3's and Gemma 3's q_norm / k_norm fused into the RoPE launch (kernels/rope.cu): against a float64 reference of
// norm-then-rotate, and against the separate launches it replaces (norm.cu's rms_norm over the heads, then rope).

const skip = gpuSkip();
const DTYPES: DType[] = ['f32', 'bf16', 'f16'];
/** Relative L2 against float64: the norm's output and the rotation are each rounded to the storage type. */
const TOL: Record<DType, number> = { f32: 1e-5, f16: 5e-3, bf16: 1e-2 };
/** Explicit mantissa bits and the smallest normal exponent of each storage type (for its ulp). */
const MANTISSA: Record<DType, number> = { f32: 23, f16: 10, bf16: 7 };
const MIN_EXP: Record<DType, number> = { f32: -126, f16: -14, bf16: -126 };
const BLOCK_SIZE = 16;
const NUM_BLOCKS = 48;
const EPS = 1e-6;
/** The step's sequences for each token count (a decode row alone, decode beside a short chunk, a prefill mix). */
const SPLITS: Record<number, number[]> = { 1: [1], 3: [1, 2], 37: [30, 1, 6] };
/** Query and KV heads for each token count: Qwen3-30B-A3B's 32/4, a warp count no block size divides, GQA. */
const HEADS: Record<number, [number, number]> = { 1: [32, 4], 3: [5, 1], 37: [8, 2] };

const gpu = backendPerDtype();
let seed = (Date.now() & 0xffff) * 1000;

interface Case {
  dtype: DType;
  tokens: number;
  headDim: number;
  rope: RopeSpec;
  /** none: plain RoPE; llama: w; gemma: 1 + w. */
  norm: 'none' | 'llama' | 'gemma';
  cache: boolean;
}

const name = (c: Case) =>
  `${c.tokens} tokens, head_dim ${c.headDim}, ${c.rope.style} rot ${c.rope.rotaryDim}, norm ${c.norm}, ` +
  `${c.cache ? 'cache write' : 'no cache'} (${c.dtype})`;

/** A step of `tokens` tokens at fresh random positions in distinct blocks; with `dropSlots` every third slot is -1. */
function randomStep(g: CudaBackend, tokens: number, dropSlots: boolean) {
  const r = mulberry32(seed++);
  let next = Math.floor(r() * 8);
  const chunks = SPLITS[tokens]!.map((len): ScheduledChunk => {
    const startPos = Math.floor(r() * 150);
    const blockTable = Array.from({ length: Math.ceil((startPos + len) / BLOCK_SIZE) }, () => next++);
    return { tokenIds: Array(len).fill(1), startPos, blockTable, logits: 'last' };
  });
  const batch = buildStepBatch(chunks, BLOCK_SIZE);
  if (dropSlots) for (let t = 1; t < batch.slotMapping.length; t += 3) batch.slotMapping[t] = -1;
  const step = g.beginStep(batch);
  g.ctx.arena.poison();
  return { batch, step };
}

/** An arena tensor holding `values` (already storage-type values). */
function upload(g: CudaBackend, shape: number[], values: Float32Array): CudaTensor {
  const t = g.ctx.empty(shape);
  g.ctx.drv.upload(t.ptr, encodeAs(values, g.ctx.dtype));
  return t;
}

/**
 * Float64 of each head: x · (Σx²/D + eps)^-½ · (offset + w) without `w`, then its first `rot` dims rotated by the
 * angle the kernels take (position × inverse frequency, a float32 product).
 */
function reference(
  x: Float32Array,
  headDim: number,
  positions: Int32Array,
  spec: RopeSpec,
  w?: Float32Array,
  offset = 0,
) {
  const out = new Float64Array(x.length);
  const heads = x.length / positions.length / headDim;
  const half = spec.rotaryDim / 2;
  for (let t = 0; t < positions.length; t++) {
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * headDim;
      let ss = 0;
      for (let i = 0; i < headDim; i++) ss += x[base + i]! ** 2;
      const inv = w ? 1 / Math.sqrt(ss / headDim + EPS) : 1;
      for (let i = 0; i < headDim; i++) out[base + i] = w ? x[base + i]! * inv * (offset + w[i]!) : x[base + i]!;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(positions[t]! * spec.invFreq[i]!);
        const [c, s] = [Math.cos(angle) * spec.mscale, Math.sin(angle) * spec.mscale];
        const [a, b] = spec.style === 'neox' ? [base + i, base + i + half] : [base + 2 * i, base + 2 * i + 1];
        const [x0, x1] = [out[a]!, out[b]!];
        out[a] = x0 * c - x1 * s;
        out[b] = x1 * c + x0 * s;
      }
    }
  }
  return out;
}

/** The spacing of `dtype`'s values at |y|. */
function ulp(y: number, dtype: DType): number {
  const e = Math.max(Math.floor(Math.log2(Math.abs(y))), MIN_EXP[dtype]);
  return 2 ** (e - MANTISSA[dtype]);
}

/** Every element of `got` within one ulp of the type of `want`'s (NaN anywhere fails). */
function assertWithinUlp(got: Float32Array, want: Float32Array, dtype: DType, what: string): void {
  let worst = 0;
  let at = -1;
  for (let i = 0; i < got.length; i++) {
    const [a, b] = [got[i]!, want[i]!];
    const ulps =
      Number.isNaN(a) || Number.isNaN(b) ? Infinity : Math.abs(a - b) / ulp(Math.max(Math.abs(a), Math.abs(b)), dtype);
    if (ulps > worst) [worst, at] = [ulps, i];
  }
  assert.ok(worst <= 1, `${what}: [${at}] ${got[at]} against ${want[at]}, ${worst} ulps apart`);
}

/** Normalizes (per `c.norm`) and rotates fresh q and k, fused and as the separate launches; checks both and the cache. */
function checkCase(c: Case): void {
  const g = gpu(c.dtype);
  const [Hq, Hk] = HEADS[c.tokens]!;
  const D = c.headDim;
  const T = c.tokens;
  const { batch, step } = randomStep(g, T, c.cache);
  const values = (n: number, scale: number) => randomValues(n, seed++, scale, c.dtype);
  const [q, k, v] = [values(T * Hq * D, 3), values(T * Hk * D, 3), values(T * Hk * D, 3)];
  const [wq, wk] = [values(D, 1), values(D, 1)];
  const offset = c.norm === 'gemma' ? 1 : 0;
  const norm: HeadNorm | undefined =
    c.norm === 'none' ? undefined : { q: upload(g, [D], wq), k: upload(g, [D], wk), eps: EPS, weightOffset: offset };
  const kvSpec = { numLayers: 1, numBlocks: NUM_BLOCKS, blockSize: BLOCK_SIZE, numKvHeads: Hk, headDim: D };
  /** rope or ropeWriteKv over fresh uploads of q, k and v (the kv cache freshly poisoned: NaN). */
  const run = (normed: (x: Tensor, heads: number, w: Float32Array) => Tensor, headNorm?: HeadNorm) => {
    const gq = normed(upload(g, [T, Hq * D], q), Hq, wq);
    const gk = normed(upload(g, [T, Hk * D], k), Hk, wk);
    const kv: LayerKvCache | null = c.cache ? g.allocKvCache(kvSpec)[0]! : null;
    if (kv) g.ropeWriteKv(gq, gk, upload(g, [T, Hk * D], v), c.rope, kv, step, headNorm);
    else g.rope(gq, gk, D, c.rope, step, headNorm);
    return { q: g.toHost(gq), k: g.toHost(gk), kv };
  };
  const fused = run((x) => x, norm);
  const what = name(c);
  const pos = batch.positions;
  check(fused.q, reference(q, D, pos, c.rope, norm && wq, offset), c.dtype, `${what}: q`);
  check(fused.k, reference(k, D, pos, c.rope, norm && wk, offset), c.dtype, `${what}: k`);
  if (norm && D <= 256) {
    // norm.cu's rms_norm over the [T * heads, D] rows (into the poisoned arena), then plain RoPE: the same sums while
    // one warp holds the head (rope.cu's norm_head; rms_norm gives a wider row more warps, another summation order).
    const separate = run((x, heads, w) => {
      const rows = rmsNorm(g.ctx, g.view(x, [T * heads, D]), upload(g, [D], w), EPS, offset);
      return g.view(rows, [T, heads * D]);
    });
    assertWithinUlp(fused.q, separate.q, c.dtype, `${what}: fused q against the separate launches`);
    assertWithinUlp(fused.k, separate.k, c.dtype, `${what}: fused k against the separate launches`);
  }
  if (fused.kv) checkCache(g, fused.kv, batch.slotMapping, fused.k, v, Hk * D, what);
  g.releaseKvCaches();
}

function check(got: Float32Array, want: Float64Array, dtype: DType, what: string): void {
  const e = relL2(got, want);
  assert.ok(e <= TOL[dtype], `${what}: relative L2 ${e} > ${TOL[dtype]} against float64 (seed base ${seed})`);
}

/** The slots written hold the token's rotated k and its v as they are; slot -1 and the unused rows stay NaN. */
function checkCache(
  g: CudaBackend,
  kv: LayerKvCache,
  slots: Int32Array,
  k: Float32Array,
  v: Float32Array,
  row: number,
  what: string,
): void {
  const cache = { k: g.toHost(kvOf(kv).k), v: g.toHost(kvOf(kv).v) };
  const source = { k, v };
  let written = 0;
  slots.forEach((slot, t) => {
    if (slot < 0) return;
    written++;
    for (const side of ['k', 'v'] as const) {
      const got = cache[side].subarray(slot * row, (slot + 1) * row);
      const want = source[side].subarray(t * row, (t + 1) * row);
      const bad = got.findIndex((x, i) => !Object.is(x, want[i]));
      assert.equal(bad, -1, `${what}: ${side} cache slot ${slot} [${bad}] ${got[bad]}, token ${t}'s ${want[bad]}`);
    }
  });
  assert.ok(slots.includes(-1) || slots.length < 2, `${what}: the step skips a slot`);
  for (const side of ['k', 'v'] as const) {
    const set = cache[side].filter((x) => !Number.isNaN(x)).length;
    assert.equal(set, written * row, `${what}: ${side} cache elements written (slot -1 skipped)`);
  }
}

describe('RoPE with the per-head RMSNorm of q and k (kernels/rope.cu)', () => {
  for (const dtype of DTYPES) {
    test(`float64 reference and the separate rms_norm + rope launches: head_dim 64/80/96/128/256/512, neox and GPT-J, partial rotary, Gemma's offset, with and without the cache write, 1/3/37 tokens (${dtype})`, {
      skip,
    }, () => {
      // 80 and 96 (Phi-3): heads that are no whole number of warps' lanes; 512: a head past one chunk of registers.
      for (const headDim of [64, 80, 96, 128, 256, 512])
        for (const style of ['neox', 'gptj'] as const)
          for (const rotaryDim of [headDim, headDim / 2]) {
            const invFreq = new Float32Array(rotaryDim / 2).map((_, i) => 1 / 1e6 ** ((2 * i) / rotaryDim));
            // YaRN's attention factor on the GPT-J pairs.
            const rope: RopeSpec = { invFreq, mscale: style === 'gptj' ? 1.15 : 1, style, rotaryDim };
            for (const norm of ['none', 'llama', 'gemma'] as const)
              for (const cache of [false, true])
                for (const tokens of [1, 3, 37]) checkCase({ dtype, tokens, headDim, rope, norm, cache });
          }
    });
  }

  test('a Qwen3 decode step launches no rms_norm over heads: the first layer input norm and the final norm only', {
    skip: skip || modelFixture('tiny-qwen3').skip,
  }, () => {
    const backend = new CudaBackend({ dtype: 'f32', graphs: false });
    const model = loadAsGolden(modelFixture('tiny-qwen3').path, backend);
    const layers = model.kvShape.numLayers;
    const prompts = [
      [1, 5, 9, 13],
      [2, 6, 10],
    ];
    const steps = 3;
    assert.equal(greedyDecode(backend, model, prompts, steps, RMS_NORM).launches, 2 * steps);
    assert.equal(greedyDecode(backend, model, prompts, steps, ROPE).launches, layers * steps);
    backend.release();
  });
});
