import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DType, SamplingRow, Tensor } from '../../src/backend/backend.ts';
import type { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { backendPerDtype } from '../helpers/cuda-backends.ts';
import { gpuSkip, hostTensor, randomValues } from '../helpers/gpu.ts';
import { referenceSample } from '../helpers/sampling-reference.ts';
import { plainRow } from '../helpers/sampling-rows.ts';

// The device sampler at a real model's vocabulary, where rows without a threshold are spread over many blocks.
// Temperatures are powers of two and biases and penalties multiples of 1/4, so float32 keeps the order the float64
// reference sees and the ids must match it exactly.

const skip = gpuSkip();
const gpu = backendPerDtype();
/** Not a multiple of any slice: the last block of a row gets a short one. */
const V = 150_001;
const ROWS = 64;
const seed = (Date.now() & 0xffff) * 1000;

/** A random row of every kind: greedy or not, with or without top-k / top-p / min-p, mask, bias and penalties. */
function randomRow(r: () => number, logitRow: number): SamplingRow {
  const pick = <X>(xs: readonly X[]): X => xs[Math.floor(r() * xs.length)]!;
  const temperature = pick([0, 0.5, 1, 2]);
  const seed = Math.floor(r() * 2 ** 40) - 2 ** 39;
  const row: SamplingRow = { ...plainRow(temperature, seed, Math.floor(r() * 1000)), logitRow };
  // Half the rows cut by a threshold (ignored when greedy), the rest take the sliced path.
  const cut = pick(['none', 'none', 'none', 'topK', 'topP', 'minP', 'all'] as const);
  if (cut === 'topK' || cut === 'all') row.topK = 1 + Math.floor(r() * 100);
  if (cut === 'topP' || cut === 'all') row.topP = 0.3 + 0.65 * r();
  if (cut === 'minP' || cut === 'all') row.minP = 0.02 + 0.2 * r();
  if (r() < 0.3) {
    // A grammar's mask, now and then shorter than the vocabulary (nothing past it is allowed).
    const end = r() < 0.3 ? Math.floor(V * (0.2 + 0.6 * r())) : V;
    const mask = new Int32Array(Math.ceil(end / 32));
    for (let i = 0; i < end; i++) if (r() < 0.3) mask[i >> 5]! |= 1 << (i & 31);
    row.allowedTokens = mask;
  }
  if (r() < 0.4) {
    row.logitBias = {};
    for (let j = 0; j < 8; j++) row.logitBias[Math.floor(r() * V)] = Math.round((r() * 2 - 1) * 16) / 4;
  }
  if (r() < 0.5) {
    const seen = new Set<number>();
    while (seen.size < 60) seen.add(Math.floor(r() * V));
    row.seenTokens = Int32Array.from(seen);
    row.seenCounts = row.seenTokens.map(() => Math.floor(r() * 4));
    row.repetitionPenalty = pick([1, 1.25, 0.75]);
    row.presencePenalty = pick([0, 0.5]);
    row.frequencyPenalty = pick([0, 0.25]);
  }
  return row;
}

/** The reference's id for each row (each reads its own logit row of `values`). */
function expectedIds(values: Float32Array, rows: readonly SamplingRow[]): number[] {
  return rows.map((row) => referenceSample(values.subarray(row.logitRow! * V, (row.logitRow! + 1) * V), row));
}

/**
 * Samples `rows` after a launch of as many rows that all draw `poison` (a large bias on it, no mask), which must come back
 * first: a row the real launch leaves unwritten shows as the poison id, and a counter not set back to zero by the
 * poison launch leaves the real one's rows unwritten.
 */
function sampleAfterPoison(g: CudaBackend, logits: Tensor, rows: readonly SamplingRow[], poison: number): number[] {
  const poisoned = rows.map((row) => ({ ...row, allowedTokens: undefined, logitBias: { [poison]: 1e4 } }));
  assert.deepEqual([...g.sampleTokens(logits, poisoned)], Array(rows.length).fill(poison), 'the poison launch');
  return [...g.sampleTokens(logits, rows)];
}

describe('device sampler over vocabulary slices', () => {
  for (const dtype of ['f32', 'bf16', 'f16'] as DType[]) {
    test(`ids equal the reference sampler's at 1, 3 and 64 rows, two launches in a row (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      const values = randomValues(ROWS * V, seed, 4, dtype);
      const logits = g.loadWeight(hostTensor('logits', [ROWS, V], values));
      const r = mulberry32(seed + 1);
      const rows = Array.from({ length: ROWS }, (_, k) => randomRow(r, k));
      // Single allowed ids at both ends of the vocabulary: the first and the last (short) slice.
      rows[1] = { ...rows[1]!, allowedTokens: Int32Array.of(1) };
      rows[2] = { ...rows[2]!, allowedTokens: new Int32Array(Math.ceil(V / 32)).fill(0) };
      rows[2].allowedTokens![(V - 1) >> 5] = 1 << ((V - 1) & 31);
      const want = expectedIds(values, rows);
      assert.equal(want[1], 0);
      assert.equal(want[2], V - 1);
      const poison = V - 2;
      const context = (what: string) => `${what} (${dtype}, seed ${seed})`;
      assert.deepEqual(sampleAfterPoison(g, logits, rows, poison), want, context('64 rows'));
      assert.deepEqual([...g.sampleTokens(logits, rows)], want, context('64 rows again'));
      for (let k = 0; k < 12; k += 3)
        assert.deepEqual(
          sampleAfterPoison(g, logits, rows.slice(k, k + 3), poison),
          want.slice(k, k + 3),
          context(`rows ${k}..${k + 2}`),
        );
      // One row a launch, one after another: each launch must reset what the last one counted.
      for (let k = 0; k < 12; k++)
        assert.deepEqual([...g.sampleTokens(logits, [rows[k]!])], [want[k]], context(`row ${k} alone`));
    });

    test(`a row without threshold scores every token as the whole-row path does (${dtype})`, { skip }, () => {
      const g = gpu(dtype);
      const n = 24;
      const values = randomValues(n * V, seed + 2, 4, dtype);
      const logits = g.loadWeight(hostTensor('logits', [n, V], values));
      const r = mulberry32(seed + 3);
      const rows = Array.from({ length: n }, (_, k) => ({
        ...randomRow(r, k),
        temperature: [0.5, 1, 2][k % 3]!,
        topK: 0,
        topP: 1,
        minP: 0,
      }));
      // min-p 1e-30 sends a row down the whole-row path yet keeps every finite logit (all within 69 of the best).
      const whole = rows.map((row) => ({ ...row, minP: 1e-30 }));
      const ids = [...g.sampleTokens(logits, [...rows, ...whole])];
      assert.deepEqual(ids.slice(0, n), ids.slice(n), `sliced and whole-row ids (${dtype}, seed ${seed})`);
      assert.deepEqual(ids.slice(0, n), expectedIds(values, rows), `reference ids (${dtype}, seed ${seed})`);
    });
  }
});
