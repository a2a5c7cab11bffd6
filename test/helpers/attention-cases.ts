import type { Case } from './gpu-attention-check.ts';

/**
 * The prefill kernels' GPU cases (test/gpu/attention-kernels.test.ts runs them through flash_prefill.cu in every tile
 * shape, test/gpu/attention-sm90a.test.ts those the sm_90a kernel covers through it): ragged prompts, prefix hits,
 * chunks, GQA packing, sliding windows, soft-caps, every head size.
 */
export const prefillCases: Case[] = [
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
