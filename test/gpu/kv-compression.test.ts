import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AttentionSpec, DType, LayerKvCache } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { pagedOf } from '../../src/backend/cpu/step-context.ts';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import { kvOf } from '../../src/backend/cuda/kv-cache.ts';
import { selectKeys } from '../../src/models/kv-compression.ts';
import type { KvCompressionPlan } from '../../src/primitives/kv-compression.ts';
import type { StepBatch } from '../../src/primitives/step-batch.ts';
import { gpuSkip, hostTensor, relL2 } from '../helpers/gpu.ts';
import {
  makePagedProblem,
  type PagedAttentionProblem,
  referencePagedAttention,
} from '../helpers/paged-attention-reference.ts';
import { problemBatch, referenceSnapKvScores } from '../helpers/snapkv-reference.ts';

const skip = gpuSkip();
let seed = (Date.now() & 0xffff) * 1000;

/** Writes the problem's whole cache (every slot, unowned ones included) through a step whose slots are 0..N-1. */
function fillCache(g: CudaBackend, p: PagedAttentionProblem, cache: LayerKvCache): void {
  const slots = p.numBlocks * p.blockSize;
  const row = p.numKvHeads * p.headDim;
  const batch: StepBatch = {
    ...problemBatch(p, []),
    inputIds: new Int32Array(slots),
    positions: new Int32Array(slots),
    slotMapping: Int32Array.from({ length: slots }, (_, i) => i),
    cuSeqlensQ: Int32Array.from([0, slots]),
    contextLens: Int32Array.from([slots]),
    numSeqs: 1,
    maxSeqlenQ: slots,
  };
  const step = g.beginStep(batch);
  const k = g.loadWeight(hostTensor('k', [slots, row], p.kCache));
  const v = g.loadWeight(hostTensor('v', [slots, row], p.vCache));
  g.writeKv(k, v, cache, step);
}

// Head size 8 runs the simple kernel (its LSE), 64 and 128 the flash prefill's in 16-bit storage.
const CASES: [DType, number, number][] = [
  ['f32', 8, 4],
  ['bf16', 64, 16],
  ['f16', 128, 16],
  ['bf16', 8, 16],
];

describe('SnapKV on the GPU against an explicit float64 softmax', () => {
  for (const [dtype, headDim, blockSize] of CASES) {
    test(`LSE, key scores and compaction (${dtype}, head_dim ${headDim}, blocks of ${blockSize})`, { skip }, () => {
      const g = new CudaBackend({ dtype, graphs: false });
      const p = makePagedProblem({
        seqs: [
          { qLen: 48, ctxLen: 300 },
          { qLen: 1, ctxLen: 40 },
          { qLen: 70, ctxLen: 70 },
        ],
        numHeads: 8,
        numKvHeads: 2,
        headDim,
        blockSize,
        seed: seed++,
        dtype: dtype === 'f16' ? 'f16' : 'bf16',
      });
      const plans: KvCompressionPlan[] = [
        { seq: 0, window: 32, budget: 100 },
        { seq: 2, window: 20, budget: 40 },
      ];
      const spec: AttentionSpec = {
        numHeads: 8,
        numKvHeads: 2,
        headDim,
        scale: p.scale,
        slidingWindow: 0,
      };
      const kvSpec = { numLayers: 1, numBlocks: p.numBlocks, blockSize, numKvHeads: 2, headDim };
      const cache = g.allocKvCache(kvSpec)[0]!;
      fillCache(g, p, cache);
      const step = g.beginStep(problemBatch(p, plans));
      g.ctx.arena.poison();
      const q = g.loadWeight(hostTensor('q', [p.q.length / (8 * headDim), 8 * headDim], p.q));
      const { lse } = g.attentionWithLse(q, cache, spec, step);
      const ref = referencePagedAttention(p);
      const gotLse = g.toHost(lse);
      for (let i = 0; i < ref.lse.length; i++) {
        assert.ok(Math.abs(gotLse[i]! - ref.lse[i]!) < 2e-3, `lse ${i}: ${gotLse[i]} vs ${ref.lse[i]}`);
      }
      const scores = g.toHost(g.kvKeyScores(q, lse, cache, spec, step));
      const want = referenceSnapKvScores(p, plans);
      const flat = Float64Array.from(want.flatMap((w) => [...w]));
      const e = relL2(scores, flat);
      assert.ok(e < (dtype === 'f32' ? 1e-4 : 5e-3), `scores relative L2 ${e}`);

      // Compaction moves rows only: bit-exact against the CPU backend doing the same on the same cache.
      const keep = selectKeys(Float32Array.from(flat), plans, p.contextLens, 2);
      g.compactKv(cache, keep, step);
      const cpu = new CpuBackend({ threads: 1 });
      const ccache = cpu.allocKvCache(kvSpec)[0]!;
      // The problem's values (garbage in unowned slots too) are exact in every storage type.
      pagedOf(ccache).k.data.set(p.kCache);
      pagedOf(ccache).v.data.set(p.vCache);
      cpu.compactKv(ccache, keep, cpu.beginStep(problemBatch(p, plans)));
      assert.deepEqual(g.toHost(kvOf(cache).k), pagedOf(ccache).k.data, 'K after compaction');
      assert.deepEqual(g.toHost(kvOf(cache).v), pagedOf(ccache).v.data, 'V after compaction');
    });
  }
});
