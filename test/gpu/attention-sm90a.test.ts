import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ATTENTION_DTYPES, FlashAttention } from '../../src/backend/cuda/flash-attention.ts';
import { SM90A_HEAD_DIMS } from '../../src/backend/cuda/flash-kernels.ts';
import { sm90aConfigName, sm90aPrefillSweep } from '../../src/backend/cuda/flash-sizing.ts';
import { prefillCases } from '../helpers/attention-cases.ts';
import { openCudaAttention } from '../helpers/cuda-attention.ts';
import { type Case, check, runOnGpu } from '../helpers/gpu-attention-check.ts';
import { makePagedProblem, referencePagedAttention } from '../helpers/paged-attention-reference.ts';

// kernels/flash_prefill_sm90a.cu against the float64 reference, fresh random inputs each run, outputs poisoned: every
// shared prefill case it covers (no soft-cap, head sizes 64 / 128 / 256), then cases around its own shapes: 128-row
// CTAs of two 64-row warpgroups, 128-key tiles (64 at head size 256), a K/V ring of 2-4 stages; then every other
// build the bench sweeps on those own cases.
const gpu = openCudaAttention();
const cc = gpu.rt?.computeCapability;
const skip =
  gpu.skip || (cc !== 90 && `the sm_90a prefill kernel runs on compute capability 9.0 only (this card: ${cc})`);

const covered = (c: Case) => (SM90A_HEAD_DIMS as readonly number[]).includes(c.headDim) && !c.softcap;

const ownCases: Case[] = [
  ...([64, 128, 256] as const).map((headDim) => ({
    name: `hd${headDim} MHA, lengths around the 64-row warpgroups and 128-row CTAs, length 1`,
    seqs: [
      { qLen: 1, ctxLen: 1 },
      { qLen: 63, ctxLen: 63 },
      { qLen: 64, ctxLen: 64 },
      { qLen: 65, ctxLen: 65 },
      { qLen: 127, ctxLen: 127 },
      { qLen: 128, ctxLen: 128 },
      { qLen: 129, ctxLen: 129 },
      { qLen: 300, ctxLen: 300 },
    ],
    numHeads: 2,
    numKvHeads: 2,
    headDim,
    blockSize: 16,
  })),
  {
    // Many tiles per CTA: the ring wraps several times, every stage's barriers go through several phases.
    name: 'hd128 GQA 4, long prompt and long prefix (the ring wraps), block size 64',
    seqs: [
      { qLen: 700, ctxLen: 1500 },
      { qLen: 1000, ctxLen: 1000 },
    ],
    numHeads: 8,
    numKvHeads: 2,
    headDim: 128,
    blockSize: 64,
  },
  {
    // 128-key tiles over 1,800 keys: 15 tiles, so the swept 6-stage ring wraps too.
    name: 'hd64 GQA 2, long prefixes (every swept ring wraps), block size 16',
    seqs: [
      { qLen: 90, ctxLen: 1800 },
      { qLen: 300, ctxLen: 1100 },
    ],
    numHeads: 4,
    numKvHeads: 2,
    headDim: 64,
    blockSize: 16,
  },
  {
    name: 'hd64 GQA 8, chunked prefill and decode rows in one step, block size 32',
    seqs: [
      { qLen: 33, ctxLen: 290 },
      { qLen: 1, ctxLen: 513 },
      { qLen: 200, ctxLen: 200 },
      { qLen: 17, ctxLen: 145 },
    ],
    numHeads: 16,
    numKvHeads: 2,
    headDim: 64,
    blockSize: 32,
  },
  {
    name: 'hd128 GQA 8, sliding window 100 over prefix hits, block size 128',
    seqs: [
      { qLen: 250, ctxLen: 400 },
      { qLen: 3, ctxLen: 260 },
      { qLen: 129, ctxLen: 129 },
    ],
    numHeads: 16,
    numKvHeads: 2,
    headDim: 128,
    blockSize: 128,
    slidingWindow: 100,
  },
  {
    name: 'hd64 GQA 4, sliding window 130 (wider than a tile), block size 16',
    seqs: [
      { qLen: 400, ctxLen: 450 },
      { qLen: 77, ctxLen: 77 },
    ],
    numHeads: 8,
    numKvHeads: 2,
    headDim: 64,
    blockSize: 16,
    slidingWindow: 130,
  },
  {
    name: 'hd256 GQA 2, sliding window 70, block size 32, prefix hits',
    seqs: [
      { qLen: 150, ctxLen: 333 },
      { qLen: 1, ctxLen: 90 },
    ],
    numHeads: 4,
    numKvHeads: 2,
    headDim: 256,
    blockSize: 32,
    slidingWindow: 70,
  },
];

for (const dtype of ATTENTION_DTYPES) {
  [...prefillCases.filter(covered), ...ownCases].forEach((c, i) => {
    test(`flash_prefill_sm90a ${c.name} (${dtype})`, { skip }, () => {
      const seed = 3000 + i * 7 + (Date.now() % 1000);
      const p = makePagedProblem({ ...c, seed, dtype });
      const fa = new FlashAttention(gpu.rt!, dtype, { prefillKernel: 'wgmma' });
      const got = runOnGpu(gpu.drv!, p, dtype, (a) => {
        assert.equal(fa.prefillKernelFor(a), 'wgmma', 'the call goes to the sm_90a kernel');
        fa.prefill(a);
      });
      check(`${c.name} (sm_90a, seed ${seed})`, dtype, got, referencePagedAttention(p));
    });
  });
}

// Every build bench/kernels.ts sweeps beside the default (overlap, ping-pong, other rings), on this file's own cases
// of its head size (bf16: the code paths are the same in fp16), so the build a bench run picks is checked already.
// One problem and reference per case, every build run on it.
ownCases.forEach((c, i) => {
  const builds = sm90aPrefillSweep(c.headDim).slice(1);
  test(`flash_prefill_sm90a swept builds (${builds.map(sm90aConfigName).join(', ')}): ${c.name}`, { skip }, () => {
    const seed = 5000 + i * 7 + (Date.now() % 1000);
    const p = makePagedProblem({ ...c, seed, dtype: 'bf16' });
    const ref = referencePagedAttention(p);
    for (const cfg of builds) {
      const fa = new FlashAttention(gpu.rt!, 'bf16', { prefillKernel: 'wgmma', sm90a: cfg });
      const got = runOnGpu(gpu.drv!, p, 'bf16', (a) => fa.prefill(a));
      check(`${c.name} (sm_90a ${sm90aConfigName(cfg)}, seed ${seed})`, 'bf16', got, ref);
    }
  });
});

test('the sm_90a kernel leaves soft-capped calls and head sizes 80 / 96 to flash_prefill.cu', { skip }, () => {
  const fa = new FlashAttention(gpu.rt!, 'bf16', { prefillKernel: 'wgmma' });
  for (const c of prefillCases.filter((c) => !covered(c))) {
    const p = makePagedProblem({ ...c, seed: 1, dtype: 'bf16' });
    const got = runOnGpu(gpu.drv!, p, 'bf16', (a) => {
      assert.equal(fa.prefillKernelFor(a), 'mma', c.name);
      fa.prefill(a);
    });
    check(`${c.name} (left to mma.sync)`, 'bf16', got, referencePagedAttention(p));
  }
});
