import { test } from 'node:test';
import { ATTENTION_DTYPES, FlashAttention } from '../../src/backend/cuda/flash-attention.ts';
import {
  type DecodeConfig,
  decodeSharedBytes,
  decodeWorkspaceBytes,
  defaultConfigs,
  type PrefillConfig,
  prefillSharedBytes,
} from '../../src/backend/cuda/flash-sizing.ts';
import { prefillCases } from '../helpers/attention-cases.ts';
import { openCudaAttention } from '../helpers/cuda-attention.ts';
import { type Case, check, runOnGpu } from '../helpers/gpu-attention-check.ts';
import { makePagedProblem, referencePagedAttention } from '../helpers/paged-attention-reference.ts';

const gpu = openCudaAttention();

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
        const fa = new FlashAttention(gpu.rt!, dtype, { prefill: cfg, prefillKernel: 'mma' });
        check(
          `${c.name} (${shape(cfg)}, seed ${seed})`,
          dtype,
          runOnGpu(gpu.drv!, p, dtype, (a) => fa.prefill(a)),
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
              runOnGpu(gpu.drv!, p, dtype, (a) => fa.decode(a, ws, splits)),
              ref,
            );
          }
        }
        const fa = new FlashAttention(gpu.rt!, dtype);
        check(
          `${c.name} (prefill kernel, seed ${seed})`,
          dtype,
          runOnGpu(gpu.drv!, p, dtype, (a) => fa.prefill(a)),
          ref,
        );
      } finally {
        h.free(ws.partialO);
        h.free(ws.partialLse);
      }
    });
  });
}
