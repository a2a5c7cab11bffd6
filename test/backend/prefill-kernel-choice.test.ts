import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type AttentionRuntime,
  FlashAttention,
  type PagedAttentionArgs,
} from '../../src/backend/cuda/flash-attention.ts';
import { sm90aPrefillDefines } from '../../src/backend/cuda/flash-prefill-sm90a.ts';
import {
  SM90_MAX_BLOCK_SMEM,
  sm90aConfigName,
  sm90aPrefillConfig,
  sm90aPrefillSharedBytes,
  sm90aPrefillSweep,
} from '../../src/backend/cuda/flash-sizing.ts';
import type { Kernel } from '../../src/backend/cuda/kernel.ts';
import { moduleArch } from '../../src/backend/cuda/modules.ts';

/** A runtime of compute capability `cc` that records each launch: kernel name, defines, grid, block, shared bytes. */
function recordingRuntime(cc: number) {
  const launches: { name: string; defines: object; grid: readonly number[]; block: readonly number[]; smem: number }[] =
    [];
  const rt: AttentionRuntime = {
    smCount: 132,
    computeCapability: cc,
    kernel: (decl, _dynamicSmem, defines = {}) =>
      ({
        name: decl.name,
        launch: (grid, block, _args, smem = 0) =>
          launches.push({ name: decl.name, defines, grid: [...grid] as number[], block: [...block] as number[], smem }),
        resources: () => ({ registers: 0, localBytes: 0 }),
      }) as Kernel<never>,
  };
  return { rt, launches };
}

const args = (over: Partial<PagedAttentionArgs> = {}): PagedAttentionArgs => ({
  q: 1n,
  qStride: 4096,
  kCache: 2n,
  vCache: 3n,
  blockTables: 4n,
  maxBlocksPerSeq: 64,
  contextLens: 5n,
  cuSeqlensQ: 6n,
  out: 7n,
  oStride: 4096,
  lse: 8n,
  numSeqs: 2,
  maxSeqlenQ: 1000,
  numHeads: 32,
  numKvHeads: 8,
  headDim: 128,
  blockSize: 16,
  scale: 1 / Math.sqrt(128),
  slidingWindow: 0,
  ...over,
});

test('prefill runs the sm_90a kernel by default on compute capability 9.0, for the calls it covers', () => {
  const hopper = recordingRuntime(90);
  const wgmma = new FlashAttention(hopper.rt, 'bf16', { prefillKernel: 'wgmma' });
  for (const headDim of [64, 128, 256]) assert.equal(wgmma.prefillKernelFor(args({ headDim })), 'wgmma');
  assert.equal(wgmma.prefillKernelFor(args({ slidingWindow: 4096 })), 'wgmma');
  // Left to the mma.sync kernel: soft-caps, quantized caches, head sizes 80 and 96.
  assert.equal(wgmma.prefillKernelFor(args({ softcap: 50 })), 'mma');
  assert.equal(wgmma.prefillKernelFor(args({ headDim: 96 })), 'mma');
  assert.equal(wgmma.prefillKernelFor(args({ headDim: 80 })), 'mma');
  const fp8 = { type: 'fp8', kScales: 0n, vScales: 0n, kScale: 1, vScale: 1 } as const;
  assert.equal(wgmma.prefillKernelFor(args({ kvQuant: fp8 })), 'mma');
  // The default, asking for mma.sync, and other cards (Ampere, Ada, Blackwell: no sm_90a code runs there).
  assert.equal(new FlashAttention(hopper.rt, 'bf16').prefillKernelFor(args()), 'wgmma');
  assert.equal(new FlashAttention(hopper.rt, 'bf16', { prefillKernel: 'mma' }).prefillKernelFor(args()), 'mma');
  for (const cc of [80, 89, 100, 120])
    assert.equal(
      new FlashAttention(recordingRuntime(cc).rt, 'bf16', { prefillKernel: 'wgmma' }).prefillKernelFor(args()),
      'mma',
    );
});

test('the sm_90a launch: 384 threads over (KV heads, sequences, 128-row tiles of the GQA-packed rows), its own build', () => {
  const { rt, launches } = recordingRuntime(90);
  new FlashAttention(rt, 'f16', { prefillKernel: 'wgmma' }).prefill(args({ maxSeqlenQ: 1000 }));
  assert.deepEqual(launches, [
    {
      name: 'flash_prefill_sm90a_hd128',
      defines: sm90aPrefillDefines('f16', 128),
      grid: [8, 2, Math.ceil((1000 * 4) / 128)],
      block: [384],
      smem: sm90aPrefillSharedBytes(128),
    },
  ]);
  assert.deepEqual(sm90aPrefillDefines('f16', 128), {
    PAGODA_DTYPE: 1,
    PAGODA_HEAD_DIM: 128,
    PAGODA_WGMMA_BN: 128,
    PAGODA_WGMMA_STAGES: 2,
    PAGODA_WGMMA_OVERLAP: 0,
    PAGODA_WGMMA_PINGPONG: 0,
  });
});

test('an sm_90a build override reaches the launch: its defines and its shared memory', () => {
  const { rt, launches } = recordingRuntime(90);
  const cfg = { blockN: 64, stages: 4, overlap: true, pingpong: true };
  new FlashAttention(rt, 'bf16', { prefillKernel: 'wgmma', sm90a: cfg }).prefill(args());
  assert.equal(launches.length, 1);
  assert.deepEqual(launches[0]!.defines, {
    PAGODA_DTYPE: 2,
    PAGODA_HEAD_DIM: 128,
    PAGODA_WGMMA_BN: 64,
    PAGODA_WGMMA_STAGES: 4,
    PAGODA_WGMMA_OVERLAP: 1,
    PAGODA_WGMMA_PINGPONG: 1,
  });
  assert.equal(launches[0]!.smem, 128 * 128 * 2 + 4 * 2 * 64 * 128 * 2 + 1024);
});

test('the sm_90a sweep: the launcher default first, then distinct builds, overlap and ping-pong each on and off', () => {
  for (const headDim of [64, 128, 256]) {
    const sweep = sm90aPrefillSweep(headDim);
    assert.deepEqual(sweep[0], sm90aPrefillConfig(headDim));
    assert.deepEqual(sm90aPrefillConfig(headDim), { ...sweep[0]!, overlap: false, pingpong: false });
    const names = sweep.map(sm90aConfigName);
    assert.equal(new Set(names).size, names.length, names.join(', '));
    for (const overlap of [false, true])
      for (const pingpong of [false, true])
        assert.ok(
          sweep.some((c) => c.overlap === overlap && c.pingpong === pingpong),
          `head size ${headDim}: overlap ${overlap}, ping-pong ${pingpong}`,
        );
  }
});

test('the sm_90a kernel shared memory fits a Hopper block (227 KB) in every build it is swept in', () => {
  for (const headDim of [64, 128, 256]) {
    for (const cfg of sm90aPrefillSweep(headDim)) {
      const bytes = sm90aPrefillSharedBytes(headDim, cfg);
      assert.equal(bytes, 128 * headDim * 2 + cfg.stages * 2 * cfg.blockN * headDim * 2 + 1024);
      assert.ok(bytes <= SM90_MAX_BLOCK_SMEM, `head size ${headDim} ${sm90aConfigName(cfg)}: ${bytes} bytes`);
    }
  }
});

test('sources named *_sm90a build for sm_90a, every other source for the device arch', () => {
  assert.equal(moduleArch('flash_prefill_sm90a', 'sm_90'), 'sm_90a');
  assert.equal(moduleArch('flash_prefill', 'sm_90'), 'sm_90');
  assert.equal(moduleArch('paged_decode', 'sm_80'), 'sm_80');
});
