import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CudaDriver } from '../../src/backend/cuda/driver.ts';
import {
  decodeWorkspaceBytes,
  type FlashAttention,
  type PagedAttentionArgs,
} from '../../src/backend/cuda/flash-attention.ts';
import { openCudaAttention } from '../helpers/cuda-attention.ts';
import {
  fromBf16Array,
  makePagedProblem,
  maxAbsDiff,
  type PagedAttentionProblem,
  referencePagedAttention,
  relativeL2,
  type SeqShape,
  toBf16Array,
} from '../helpers/paged-attention-reference.ts';

const gpu = openCudaAttention();
const BF16_NAN_PAIR = 0x7fc07fc0;
const F32_NAN = 0x7fc00000;

interface Case {
  name: string;
  seqs: SeqShape[];
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  slidingWindow?: number;
}

/** Uploads the problem, poisons the outputs, runs `kernel`, returns O and LSE as read back. */
function runOnGpu(p: PagedAttentionProblem, kernel: (fa: FlashAttention, a: PagedAttentionArgs) => void) {
  const h: CudaDriver = gpu.drv!;
  const totalQ = p.cuSeqlensQ[p.seqs.length]!;
  const qElems = totalQ * p.numHeads * p.headDim;
  const bufs: bigint[] = [];
  const put = (data: ArrayBufferView) => {
    const ptr = h.alloc(data.byteLength);
    h.upload(ptr, data);
    bufs.push(ptr);
    return ptr;
  };
  const q = put(toBf16Array(p.q));
  const kCache = put(toBf16Array(p.kCache));
  const vCache = put(toBf16Array(p.vCache));
  const blockTables = put(p.blockTables);
  const contextLens = put(p.contextLens);
  const cuSeqlensQ = put(p.cuSeqlensQ);
  const out = h.alloc(qElems * 2);
  const lse = h.alloc(totalQ * p.numHeads * 4);
  bufs.push(out, lse);
  h.fill32(out, BF16_NAN_PAIR, qElems / 2);
  h.fill32(lse, F32_NAN, totalQ * p.numHeads);
  const args: PagedAttentionArgs = {
    q,
    qStride: p.numHeads * p.headDim,
    kCache,
    vCache,
    blockTables,
    maxBlocksPerSeq: p.maxBlocksPerSeq,
    contextLens,
    cuSeqlensQ,
    out,
    oStride: p.numHeads * p.headDim,
    lse,
    numSeqs: p.seqs.length,
    maxSeqlenQ: Math.max(...p.seqs.map((s) => s.qLen)),
    numHeads: p.numHeads,
    numKvHeads: p.numKvHeads,
    headDim: p.headDim,
    blockSize: p.blockSize,
    scale: p.scale,
    slidingWindow: p.slidingWindow,
  };
  kernel(gpu.fa!, args);
  h.sync();
  const outBits = new Uint16Array(qElems);
  const lseHost = new Float32Array(totalQ * p.numHeads);
  h.download(outBits, out);
  h.download(lseHost, lse);
  for (const b of bufs) h.free(b);
  return { out: fromBf16Array(outBits), lse: lseHost };
}

function check(name: string, got: { out: Float32Array; lse: Float32Array }, p: PagedAttentionProblem) {
  const ref = referencePagedAttention(p);
  const errO = relativeL2(got.out, ref.out);
  const errLse = maxAbsDiff(got.lse, ref.lse);
  assert.ok(errO <= 1e-2, `${name}: relative L2 error of O ${errO}`);
  assert.ok(errLse <= 2e-3, `${name}: max LSE error ${errLse}`);
}

const prefillCases: Case[] = [
  {
    name: 'hd128 MHA, ragged prompts',
    seqs: [
      { qLen: 37, ctxLen: 37 },
      { qLen: 130, ctxLen: 130 },
      { qLen: 1, ctxLen: 1 },
      { qLen: 64, ctxLen: 64 },
    ],
    numHeads: 4,
    numKvHeads: 4,
    headDim: 128,
    blockSize: 16,
  },
  {
    name: 'hd64 GQA 4, prefix hits not block-aligned',
    seqs: [
      { qLen: 50, ctxLen: 77 },
      { qLen: 200, ctxLen: 233 },
      { qLen: 5, ctxLen: 300 },
    ],
    numHeads: 8,
    numKvHeads: 2,
    headDim: 64,
    blockSize: 16,
  },
  {
    name: 'hd128 GQA 8, block size 32, chunked',
    seqs: [
      { qLen: 70, ctxLen: 100 },
      { qLen: 129, ctxLen: 129 },
      { qLen: 17, ctxLen: 48 },
    ],
    numHeads: 16,
    numKvHeads: 2,
    headDim: 128,
    blockSize: 32,
  },
  {
    name: 'hd128 GQA 4, sliding window 48',
    seqs: [
      { qLen: 150, ctxLen: 170 },
      { qLen: 3, ctxLen: 90 },
      { qLen: 40, ctxLen: 40 },
    ],
    numHeads: 8,
    numKvHeads: 2,
    headDim: 128,
    blockSize: 16,
    slidingWindow: 48,
  },
  {
    name: 'hd64 GQA 7 (rows straddle tiles), mixed decode + prefill',
    seqs: [
      { qLen: 1, ctxLen: 33 },
      { qLen: 41, ctxLen: 41 },
      { qLen: 1, ctxLen: 16 },
    ],
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    blockSize: 16,
  },
];

const decodeSeqs = (lens: number[]) => lens.map((ctxLen) => ({ qLen: 1, ctxLen }));
const decodeCases: Case[] = [
  {
    name: 'hd128 GQA 4, block boundaries and a long context',
    seqs: decodeSeqs([1, 15, 16, 17, 1000, 2500]),
    numHeads: 32,
    numKvHeads: 8,
    headDim: 128,
    blockSize: 16,
  },
  {
    name: 'hd64 MHA, block size 32',
    seqs: decodeSeqs([31, 32, 33, 700]),
    numHeads: 4,
    numKvHeads: 4,
    headDim: 64,
    blockSize: 32,
  },
  {
    name: 'hd128 GQA 8, sliding window 100',
    seqs: decodeSeqs([5, 99, 100, 101, 1234]),
    numHeads: 16,
    numKvHeads: 2,
    headDim: 128,
    blockSize: 16,
    slidingWindow: 100,
  },
  {
    name: 'hd64 GQA 32 (two head groups per KV head)',
    seqs: decodeSeqs([3, 400]),
    numHeads: 64,
    numKvHeads: 2,
    headDim: 64,
    blockSize: 64,
  },
];

prefillCases.forEach((c, i) => {
  test(`flash_prefill ${c.name}`, { skip: gpu.skip }, () => {
    const seed = 1000 + i * 7 + (Date.now() % 1000);
    const p = makePagedProblem({ ...c, seed });
    check(
      `${c.name} (seed ${seed})`,
      runOnGpu(p, (fa, a) => fa.prefill(a)),
      p,
    );
  });
});

decodeCases.forEach((c, i) => {
  test(`paged_decode ${c.name}`, { skip: gpu.skip }, () => {
    const h = gpu.drv!;
    const seed = 2000 + i * 7 + (Date.now() % 1000);
    const p = makePagedProblem({ ...c, seed });
    const wsBytes = decodeWorkspaceBytes(c.seqs.length, c.numHeads, c.headDim);
    const ws = { partialO: h.alloc(wsBytes.partialO), partialLse: h.alloc(wsBytes.partialLse), maxSplits: 32 };
    try {
      check(
        `${c.name} (auto splits, seed ${seed})`,
        runOnGpu(p, (fa, a) => fa.decode(a, ws)),
        p,
      );
      check(
        `${c.name} (1 split, seed ${seed})`,
        runOnGpu(p, (fa, a) => fa.decode(a, ws, 1)),
        p,
      );
      check(
        `${c.name} (7 splits, seed ${seed})`,
        runOnGpu(p, (fa, a) => fa.decode(a, ws, 7)),
        p,
      );
      check(
        `${c.name} (prefill kernel, seed ${seed})`,
        runOnGpu(p, (fa, a) => fa.prefill(a)),
        p,
      );
    } finally {
      h.free(ws.partialO);
      h.free(ws.partialLse);
    }
  });
});
