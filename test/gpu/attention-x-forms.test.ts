import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CudaBackend } from '../../src/backend/cuda/backend.ts';
import {
  type AttentionDtype,
  cudaAttentionRuntime,
  decodeWritesQ8,
  FlashAttention,
} from '../../src/backend/cuda/flash-attention.ts';
import { decodeWorkspaceBytes } from '../../src/backend/cuda/flash-sizing.ts';
import { CudaTensor } from '../../src/backend/cuda/tensor.ts';
import type { QuantizedX } from '../../src/backend/cuda/x-form.ts';
import { gpuSkip } from '../helpers/gpu.ts';
import { type Case, check, runOnGpu } from '../helpers/gpu-attention-check.ts';
import { makePagedProblem, referencePagedAttention } from '../helpers/paged-attention-reference.ts';
import { bytes, checkTwin, firstDiff, POISON, quantizedBytes, separately } from '../helpers/x-forms.ts';

// The decode attention kernels that also write O as q8 groups for o_proj's integer GEMV (kernels/paged_decode.cu
// XQ 1): by the CTA with one split, by paged_decode_merge with several. The copy must be bit for bit what
// quant_act_q8 writes from O and what the CPU twin computes from it, O itself unchanged and float64's.

const skip = gpuSkip();
let seed = (Date.now() & 0xffff) * 1000 + 700;

const decode = (lens: number[]) => lens.map((ctxLen) => ({ qLen: 1, ctxLen }));
/** Decode steps of 1 to 8 sequences (rows) at every head size whose heads hold whole 32-value groups. */
const CASES: Case[] = [
  {
    name: 'hd128 GQA 4, 8 rows',
    seqs: decode([1, 17, 1000, 2500, 5, 64, 300, 33]),
    numHeads: 32,
    numKvHeads: 8,
    headDim: 128,
    blockSize: 16,
  },
  {
    name: 'hd128 GQA 8, 1 row 8192 wide',
    seqs: decode([777]),
    numHeads: 64,
    numKvHeads: 8,
    headDim: 128,
    blockSize: 16,
  },
  { name: 'hd64 MHA, 2 rows', seqs: decode([31, 700]), numHeads: 4, numKvHeads: 4, headDim: 64, blockSize: 32 },
  {
    name: 'hd96 GQA 3, 5 rows',
    seqs: decode([10, 200, 999, 7, 1]),
    numHeads: 12,
    numKvHeads: 4,
    headDim: 96,
    blockSize: 16,
  },
  {
    name: 'hd256 GQA 2, soft-cap, 3 rows',
    seqs: decode([1, 3000, 50]),
    numHeads: 8,
    numKvHeads: 4,
    headDim: 256,
    blockSize: 16,
    softcap: 2,
  },
];

describe('decode attention writing O as q8 groups for o_proj (kernels/paged_decode.cu XQ)', () => {
  for (const dtype of ['bf16', 'f16'] as const satisfies AttentionDtype[]) {
    test(`one split (the CTA writes it), 7 and the default (the merge does): bit for bit quant_act_q8 and the CPU twin, O unchanged and float64's, outputs poisoned (${dtype})`, {
      skip,
    }, () => {
      const g = new CudaBackend({ dtype, graphs: false });
      const drv = g.ctx.drv;
      const fa = new FlashAttention(cudaAttentionRuntime(drv, g.ctx.mods), dtype);
      for (const c of CASES) {
        assert.ok(decodeWritesQ8(c.headDim), c.name);
        const p = makePagedProblem({ ...c, seed: seed++, dtype });
        const ref = referencePagedAttention(p);
        const [rows, n] = [c.seqs.length, c.numHeads * c.headDim];
        const wsBytes = decodeWorkspaceBytes(rows, c.numHeads, c.headDim);
        const ws = { partialO: drv.alloc(wsBytes.partialO), partialLse: drv.alloc(wsBytes.partialLse), maxSplits: 32 };
        const q: QuantizedX = { form: 'q8', xq: drv.alloc(rows * n), xs: drv.alloc((rows * n) / 4) };
        try {
          for (const splits of [1, 7, undefined]) {
            const what = `${c.name}, ${splits ?? 'default'} splits`;
            const plain = runOnGpu(drv, p, dtype, (a) => fa.decode(a, ws, splits));
            drv.fill32(q.xq, POISON.q8, (rows * n) / 4);
            drv.fill32(q.xs, POISON.q8, (rows * n) / 16);
            let outBits: Uint8Array = new Uint8Array();
            const fused = runOnGpu(drv, p, dtype, (a) => {
              fa.decode({ ...a, xq: q }, ws, splits);
              drv.sync();
              outBits = bytes(g, a.out, rows * n * 2);
            });
            check(what, dtype, fused, ref);
            assert.deepEqual(fused.out, plain.out, `${what}: O unchanged`);
            const got = quantizedBytes(g, q, rows, n);
            checkTwin('q8', got, fused.out, rows, n);
            g.ctx.arena.reset();
            g.ctx.arena.poison(POISON.q8);
            const out = g.ctx.arena.alloc(outBits.length);
            drv.upload(out, outBits);
            const want = quantizedBytes(
              g,
              separately(g, 'q8', new CudaTensor([rows, n], dtype, out), rows, n),
              rows,
              n,
            );
            assert.equal(firstDiff(got.xq, want.xq), -1, `${what}: levels equal quant_act_q8's`);
            assert.equal(firstDiff(got.xs, want.xs), -1, `${what}: scales equal quant_act_q8's`);
          }
        } finally {
          for (const ptr of [ws.partialO, ws.partialLse, q.xq, q.xs]) drv.free(ptr);
        }
      }
    });
  }

  test('heads of 80 (groups would straddle heads) are refused the form, and no head size takes e4m3', { skip }, () => {
    assert.equal(decodeWritesQ8(80), false);
    const g = new CudaBackend({ dtype: 'bf16', graphs: false });
    const fa = new FlashAttention(cudaAttentionRuntime(g.ctx.drv, g.ctx.mods), 'bf16');
    const c = { seqs: decode([9]), numHeads: 2, numKvHeads: 2, blockSize: 16 };
    const ws = { partialO: 0n, partialLse: 0n, maxSplits: 32 };
    for (const [headDim, form] of [
      [80, 'q8'],
      [128, 'e4m3'],
    ] as const) {
      const p = makePagedProblem({ ...c, headDim, seed: seed++, dtype: 'bf16' });
      const q: QuantizedX = { form, xq: 0n, xs: 0n };
      assert.throws(() => runOnGpu(g.ctx.drv, p, 'bf16', (a) => fa.decode({ ...a, xq: q }, ws, 1)), /O as/);
    }
  });
});
