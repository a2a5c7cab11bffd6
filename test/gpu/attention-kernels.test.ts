import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CudaDriver } from '../../src/backend/cuda/driver.ts';
import {
  ATTENTION_DTYPES,
  type AttentionDtype,
  FlashAttention,
  type PagedAttentionArgs,
} from '../../src/backend/cuda/flash-attention.ts';
import {
  type DecodeConfig,
  decodeSharedBytes,
  decodeWorkspaceBytes,
  defaultConfigs,
  type PrefillConfig,
  prefillSharedBytes,
} from '../../src/backend/cuda/flash-sizing.ts';
import { openCudaAttention } from '../helpers/cuda-attention.ts';
import {
  fromStorageArray,
  makePagedProblem,
  maxAbsDiff,
  type PagedAttentionProblem,
  referencePagedAttention,
  relativeL2,
  type SeqShape,
  toStorageArray,
} from '../helpers/paged-attention-reference.ts';

const gpu = openCudaAttention();
/** Two NaNs of the storage type, the outputs' poison. */
const NAN_PAIR: Record<AttentionDtype, number> = { bf16: 0x7fc07fc0, f16: 0x7e007e00 };
const F32_NAN = 0x7fc00000;
/**
 * Bounds on O's relative L2 error. Inputs are exact in both types; the error is the rounding of the probabilities
 * to the storage type before P.V and of O itself. Emulating exactly that on the CPU over these cases gives bf16
 * 1.0e-3..2.2e-3 and fp16 8x less (three more mantissa bits), 1.2e-4..2.8e-4; each bound is ~4.5x its worst case.
 * The LSE comes from fp32 scores of exact inputs, the same arithmetic in both types.
 */
const O_TOL: Record<AttentionDtype, number> = { bf16: 1e-2, f16: 1.25e-3 };
const LSE_TOL = 2e-3;

interface Case {
  name: string;
  seqs: SeqShape[];
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  slidingWindow?: number;
  softcap?: number;
}

/** Uploads the problem in `dtype`, poisons the outputs, runs `kernel`, returns O and LSE as read back. */
function runOnGpu(p: PagedAttentionProblem, dtype: AttentionDtype, kernel: (a: PagedAttentionArgs) => void) {
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
  const q = put(toStorageArray(p.q, dtype));
  const kCache = put(toStorageArray(p.kCache, dtype));
  const vCache = put(toStorageArray(p.vCache, dtype));
  const blockTables = put(p.blockTables);
  const contextLens = put(p.contextLens);
  const cuSeqlensQ = put(p.cuSeqlensQ);
  const out = h.alloc(qElems * 2);
  const lse = h.alloc(totalQ * p.numHeads * 4);
  bufs.push(out, lse);
  h.fill32(out, NAN_PAIR[dtype], qElems / 2);
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
    softcap: p.softcap,
  };
  kernel(args);
  h.sync();
  const outBits = new Uint16Array(qElems);
  const lseHost = new Float32Array(totalQ * p.numHeads);
  h.download(outBits, out);
  h.download(lseHost, lse);
  for (const b of bufs) h.free(b);
  return { out: fromStorageArray(outBits, dtype), lse: lseHost };
}

type Reference = ReturnType<typeof referencePagedAttention>;

function check(name: string, dtype: AttentionDtype, got: { out: Float32Array; lse: Float32Array }, ref: Reference) {
  const errO = relativeL2(got.out, ref.out);
  const errLse = maxAbsDiff(got.lse, ref.lse);
  assert.ok(errO <= O_TOL[dtype], `${name} (${dtype}): relative L2 error of O ${errO} > ${O_TOL[dtype]}`);
  assert.ok(errLse <= LSE_TOL, `${name} (${dtype}): max LSE error ${errLse} > ${LSE_TOL}`);
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
    // Scores of about +-1 through a cap of 0.5: the cap bends them all (Gemma 2 caps at 50 with larger scores).
    name: 'hd128 GQA 2, soft-cap 0.5 and sliding window 40 (Gemma 2-27B: head size 128)',
    seqs: [
      { qLen: 100, ctxLen: 130 },
      { qLen: 1, ctxLen: 77 },
      { qLen: 33, ctxLen: 33 },
    ],
    numHeads: 4,
    numKvHeads: 2,
    headDim: 128,
    blockSize: 16,
    slidingWindow: 40,
    softcap: 0.5,
  },
  {
    name: 'hd64 MHA, soft-cap 2',
    seqs: [
      { qLen: 64, ctxLen: 64 },
      { qLen: 7, ctxLen: 200 },
    ],
    numHeads: 4,
    numKvHeads: 4,
    headDim: 64,
    blockSize: 16,
    softcap: 2,
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
  {
    name: 'hd256 GQA 2, soft-cap 0.5 and sliding window 40 (Gemma 2-9B: head size 256)',
    seqs: [
      { qLen: 100, ctxLen: 130 },
      { qLen: 1, ctxLen: 77 },
      { qLen: 70, ctxLen: 70 },
    ],
    numHeads: 4,
    numKvHeads: 2,
    headDim: 256,
    blockSize: 16,
    slidingWindow: 40,
    softcap: 0.5,
  },
  {
    // Head size 80: a row's 10 16-byte chunks do not divide among a CTA's threads (the loaders' ragged last round).
    name: 'hd80 MHA (Phi-2: head size 80), ragged prompts and a prefix hit',
    seqs: [
      { qLen: 37, ctxLen: 37 },
      { qLen: 70, ctxLen: 130 },
      { qLen: 1, ctxLen: 50 },
    ],
    numHeads: 4,
    numKvHeads: 4,
    headDim: 80,
    blockSize: 16,
  },
  {
    name: 'hd96 GQA 3 (Phi-3-mini: head size 96), sliding window 48, block size 32',
    seqs: [
      { qLen: 150, ctxLen: 170 },
      { qLen: 3, ctxLen: 90 },
      { qLen: 65, ctxLen: 65 },
    ],
    numHeads: 6,
    numKvHeads: 2,
    headDim: 96,
    blockSize: 32,
    slidingWindow: 48,
  },
  {
    name: 'hd256 GQA 4 (Gemma 3-1B: 4 / 1 heads), block size 32, prefix hits',
    seqs: [
      { qLen: 45, ctxLen: 200 },
      { qLen: 129, ctxLen: 129 },
    ],
    numHeads: 4,
    numKvHeads: 1,
    headDim: 256,
    blockSize: 32,
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
    name: 'hd128 GQA 2, soft-cap 0.5 and sliding window 100',
    seqs: decodeSeqs([5, 100, 1234]),
    numHeads: 4,
    numKvHeads: 2,
    headDim: 128,
    blockSize: 16,
    slidingWindow: 100,
    softcap: 0.5,
  },
  {
    name: 'hd64 GQA 4, soft-cap 2, long context (split KV)',
    seqs: decodeSeqs([1, 3000]),
    numHeads: 8,
    numKvHeads: 2,
    headDim: 64,
    blockSize: 16,
    softcap: 2,
  },
  {
    name: 'hd128 GQA 7 (Qwen2.5-7B: 28 / 4 heads)',
    seqs: decodeSeqs([1, 17, 300, 2049]),
    numHeads: 28,
    numKvHeads: 4,
    headDim: 128,
    blockSize: 16,
  },
  {
    name: 'hd128 GQA 3 (Llama-3.2-3B: 24 / 8 heads)',
    seqs: decodeSeqs([2, 64, 777]),
    numHeads: 24,
    numKvHeads: 8,
    headDim: 128,
    blockSize: 16,
  },
  {
    name: 'hd64 GQA 32 (two head groups per KV head)',
    seqs: decodeSeqs([3, 400]),
    numHeads: 64,
    numKvHeads: 2,
    headDim: 64,
    blockSize: 64,
  },
  {
    name: 'hd80 MHA, block boundaries and a long context (split KV)',
    seqs: decodeSeqs([1, 16, 17, 2500]),
    numHeads: 4,
    numKvHeads: 4,
    headDim: 80,
    blockSize: 16,
  },
  {
    name: 'hd96 GQA 4, soft-cap 2 and sliding window 100',
    seqs: decodeSeqs([5, 100, 1234]),
    numHeads: 8,
    numKvHeads: 2,
    headDim: 96,
    blockSize: 16,
    slidingWindow: 100,
    softcap: 2,
  },
  {
    name: 'hd256 GQA 2, soft-cap 0.5 and sliding window 100',
    seqs: decodeSeqs([5, 100, 1234]),
    numHeads: 4,
    numKvHeads: 2,
    headDim: 256,
    blockSize: 16,
    slidingWindow: 100,
    softcap: 0.5,
  },
  {
    name: 'hd256 GQA 4, long context (split KV)',
    seqs: decodeSeqs([1, 17, 777, 3000]),
    numHeads: 4,
    numKvHeads: 1,
    headDim: 256,
    blockSize: 16,
  },
];

// Every tile shape the launcher can be configured with; each head size runs those whose shared memory fits (an
// H100's or H200's 227 KB a block), its default first.
const MAX_SHARED = 227 * 1024;
const prefillConfigs: PrefillConfig[] = [
  { warps: 8, mTiles: 2, blockN: 64 },
  { warps: 8, mTiles: 1, blockN: 128 },
  { warps: 8, mTiles: 1, blockN: 64 },
  { warps: 4, mTiles: 2, blockN: 64 },
  { warps: 4, mTiles: 1, blockN: 64 },
];
const decodeConfigs: DecodeConfig[] = [
  { warps: 4, tileN: 32, stages: 2 },
  { warps: 4, tileN: 16, stages: 3 },
  { warps: 4, tileN: 16, stages: 2 },
  { warps: 8, tileN: 16, stages: 2 },
];
const shape = (c: object) => JSON.stringify(c).replace(/["{}]/g, '');
function configsFor<C extends object>(first: C, all: C[], bytes: (c: C) => number): C[] {
  return [first, ...all.filter((c) => shape(c) !== shape(first) && bytes(c) <= MAX_SHARED)];
}

for (const dtype of ATTENTION_DTYPES) {
  prefillCases.forEach((c, i) => {
    test(`flash_prefill ${c.name} (${dtype})`, { skip: gpu.skip }, () => {
      const seed = 1000 + i * 7 + (Date.now() % 1000);
      const p = makePagedProblem({ ...c, seed, dtype });
      const ref = referencePagedAttention(p);
      const configs = configsFor(defaultConfigs(c.headDim).prefill, prefillConfigs, (g) =>
        prefillSharedBytes(c.headDim, g),
      );
      for (const cfg of configs) {
        const fa = new FlashAttention(gpu.rt!, dtype, { prefill: cfg });
        check(
          `${c.name} (${shape(cfg)}, seed ${seed})`,
          dtype,
          runOnGpu(p, dtype, (a) => fa.prefill(a)),
          ref,
        );
      }
    });
  });

  decodeCases.forEach((c, i) => {
    test(`paged_decode ${c.name} (${dtype})`, { skip: gpu.skip }, () => {
      const h = gpu.drv!;
      const seed = 2000 + i * 7 + (Date.now() % 1000);
      const p = makePagedProblem({ ...c, seed, dtype });
      const ref = referencePagedAttention(p);
      const wsBytes = decodeWorkspaceBytes(c.seqs.length, c.numHeads, c.headDim);
      const ws = { partialO: h.alloc(wsBytes.partialO), partialLse: h.alloc(wsBytes.partialLse), maxSplits: 32 };
      try {
        const configs = configsFor(defaultConfigs(c.headDim).decode, decodeConfigs, (g) =>
          decodeSharedBytes(c.headDim, g),
        );
        for (const cfg of configs) {
          const fa = new FlashAttention(gpu.rt!, dtype, { decode: cfg });
          for (const splits of [undefined, 1, 7]) {
            check(
              `${c.name} (${shape(cfg)}, ${splits ?? 'auto'} splits, seed ${seed})`,
              dtype,
              runOnGpu(p, dtype, (a) => fa.decode(a, ws, splits)),
              ref,
            );
          }
        }
        const fa = new FlashAttention(gpu.rt!, dtype);
        check(
          `${c.name} (prefill kernel, seed ${seed})`,
          dtype,
          runOnGpu(p, dtype, (a) => fa.prefill(a)),
          ref,
        );
      } finally {
        h.free(ws.partialO);
        h.free(ws.partialLse);
      }
    });
  });
}
