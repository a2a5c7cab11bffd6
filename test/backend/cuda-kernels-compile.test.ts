import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { sm90aPrefillDefines } from '../../src/backend/cuda/flash-prefill-sm90a.ts';
import { sm90aPrefillSweep } from '../../src/backend/cuda/flash-sizing.ts';
import { kernelsDir } from '../../src/backend/cuda/modules.ts';

const run = promisify(execFile);

function nvccVersion(): string | null {
  try {
    return execFileSync('nvcc', ['--version'], { encoding: 'utf8' });
  } catch {
    return null;
  }
}

const nvcc = nvccVersion();
const sources = readdirSync(kernelsDir).filter((f) => f.endsWith('.cu'));
// The tensor-core attention kernels (attention_common.cuh, or decode_out.cuh / wgmma.cuh / prefill_sm90a.cuh, which
// include it) exist for 16-bit storage only; the rest for all three.
const dtypesOf = (f: string) =>
  /#include "(attention_common|decode_out|wgmma|prefill_sm90a)\.cuh"/.test(readFileSync(join(kernelsDir, f), 'utf8'))
    ? [1, 2]
    : [0, 1, 2];
// The *_sm90a sources exist for sm_90a only, the FP8 GEMVs (the tensor-core one, gemv.cu's WFP8 build) for FP8 cards
// (sm_89+: Ada, Hopper), everything else from Ampere on.
const archsOf = (f: string, defines: readonly string[]) =>
  sm90a(f) ? ['90a'] : f === 'fp8_gemv.cu' || defines.includes('WFP8=1') ? ['89', '90'] : ['80', '90'];

// Builds beyond a source's defaults that the launchers use (bf16 only: the code paths are the same in every type).
// PAGODA_KV_QUANT 1 / 2: the fp8 and q8_0 caches' builds (kv-layout.ts), at the head-256 shapes too.
const KV_QUANTS = ['PAGODA_KV_QUANT=1', 'PAGODA_KV_QUANT=2'];
const VARIANTS: Record<string, string[][]> = {
  'attention.cu': [['SELF=1', 'CAUSAL=0'], ['SELF=1'], ...KV_QUANTS.map((q) => [q])],
  'kv_cache.cu': KV_QUANTS.map((q) => [q]),
  // XQ 1: O also written as q8 groups for o_proj's integer GEMV (x-form.ts).
  'paged_decode.cu': [
    ...KV_QUANTS.flatMap((q) => [[q], [q, 'PAGODA_HEAD_DIM=256', 'PAGODA_DECODE_TILE=16']]),
    ['XQ=1'],
    ['XQ=1', 'PAGODA_KV_QUANT=2', 'PAGODA_HEAD_DIM=256', 'PAGODA_DECODE_TILE=16'],
  ],
  'paged_decode_merge.cu': [['XQ=1']],
  // XQ 1 / 2 (act_mul): the gated product also written as q8 groups or e4m3 codes for the down projection.
  'elementwise.cu': [['ACT=1'], ['XQ=1'], ['XQ=2', 'ACT=1']],
  // XQ 1 / 2: the RMSNorms that also write x as q8 groups or e4m3 codes for the linear they feed (x-form.ts); NORM_X:
  // add_rms_norm normalizing x first (Gemma 2/3's sandwich norms).
  'norm.cu': [
    ['W_OFFSET=1', 'RES_IN_F32=1'],
    ['XQ=1'],
    ['XQ=2', 'RES_IN_F32=1'],
    ['XQ=1', 'W_OFFSET=1'],
    ['NORM_X=1', 'W_OFFSET=1'],
    ['NORM_X=1', 'W_OFFSET=1', 'RES_IN_F32=1', 'XQ=1'],
    ['NORM_X=1', 'W_OFFSET=1', 'RES_IN_F32=1', 'XQ=2'],
  ],
  'flash_prefill.cu': [
    ['PAGODA_PREFILL_SELF=1'],
    ['PAGODA_PREFILL_SELF=1', 'PAGODA_PREFILL_CAUSAL=0'],
    ...KV_QUANTS.flatMap((q) => [[q], [q, 'PAGODA_HEAD_DIM=256', 'PAGODA_PREFILL_WARPS=4', 'PAGODA_PREFILL_MT=1']]),
  ],
  // Every build bench/kernels.ts sweeps (its default is the plain build of each head size), held to no spills below.
  'flash_prefill_sm90a.cu': [64, 128, 256].flatMap((headDim) =>
    sm90aPrefillSweep(headDim).map((cfg) =>
      Object.entries(sm90aPrefillDefines('bf16', headDim, cfg))
        .filter(([name]) => name !== 'PAGODA_DTYPE')
        .map(([name, value]) => `${name}=${value}`),
    ),
  ),
  // WFP8 1: the CUDA-core FP8 GEMV (gemv_fp8) at the rule's and the sweep's shapes.
  'gemv.cu': [
    ['TMAX=32', 'SPLIT=2', 'ROWS=4'],
    ['TMAX=8', 'SPLIT=4', 'GATED=1', 'UNROLL=2'],
    ['TMAX=1', 'SPLIT=8', 'GATED=1', 'ACT=1'],
    // ROPE 1: the q/k/v GEMV with RoPE and the cache write (gemv_rope), at the one-row rule's and a 4-row config.
    ['ROPE=1', 'TMAX=1', 'SPLIT=8', 'UNROLL=2', 'WSTREAM=1'],
    ['ROPE=1', 'TMAX=4', 'SPLIT=4'],
    ['WFP8=1', 'TMAX=1', 'SPLIT=4', 'ROWS=2'],
    ['WFP8=1', 'TMAX=8', 'SPLIT=1', 'ROWS=4', 'UNROLL=2'],
    ['WFP8=1', 'TMAX=4', 'SPLIT=8', 'GATED=1', 'ACT=1'],
  ],
  // The decode builds moe.ts picks: gate/up (gated, split over K) and down, up to 8 tokens.
  'moe_gemv.cu': [
    ['TMAX=8', 'SPLIT=4', 'GATED=1'],
    ['TMAX=2', 'SPLIT=8', 'GATED=1', 'ACT=1'],
    ['TMAX=4', 'SPLIT=1'],
  ],
  'fp8_gemv.cu': [
    ['TILES=2', 'SPLIT=4', 'UNROLL=2'],
    ['SPLIT=1', 'UNROLL=8'],
    ['GATED=1', 'UNROLL=2'],
    ['GATED=1', 'ACT=1', 'SPLIT=2'],
  ],
  'kv_compression.cu': [['SCATTER=1'], ...KV_QUANTS.flatMap((q) => [[q], [q, 'SCATTER=1']])],
  // Every block type (the default build is q4_k).
  'quant.cu': [
    ...[0, 1, 2, 3, 4, 5, 6, 8, 9].map((q) => [`QTYPE=${q}`]),
    // The integer GEMV's tuning defines as bench/quant-gemv.ts sweeps them.
    ['QTYPE=9', 'Q8_ROWS=4', 'Q8_UNROLL=2'],
    ['QTYPE=2', 'Q8_ROWS=2', 'Q8_UNROLL=4'],
  ],
  // Every type the fused GEMM decodes (the default build is q4_k).
  'quant_gemm.cu': [4, 8, 9].map((q) => [`QTYPE=${q}`]),
  // The MoE GEMV over experts in blocks, for every type (its default build is QTYPE 7).
  'moe_quant.cu': [0, 1, 2, 3, 4, 5, 6, 8, 9].map((q) => [`QTYPE=${q}`]),
};
const buildsOf = (f: string) => [
  ...dtypesOf(f).map((dtype) => ({ dtype, defines: [] as string[] })),
  ...(VARIANTS[f] ?? []).map((defines) => ({ dtype: 2, defines })),
];

// Sources of the architecture-specific Hopper target (wgmma, setmaxnreg): built for sm_90a alone, as modules.ts does,
// and held to no register spills (their consumers keep S and O tiles in registers).
const sm90a = (f: string) => f.endsWith('_sm90a.cu');
// Held to no register spills: those sources, and the fused quantized GEMM (128 fp32 accumulators a thread at 256 rows).
const spillChecked = (f: string) => sm90a(f) || f === 'quant_gemm.cu';

test('there are kernel sources, the attention kernels among them in both 16-bit types', () => {
  assert.ok(sources.length >= 6, `found ${sources.join(', ')}`);
  for (const f of ['flash_prefill.cu', 'flash_prefill_sm90a.cu', 'paged_decode.cu', 'paged_decode_merge.cu'])
    assert.deepEqual(dtypesOf(f), [1, 2], f);
});

// Every kernel, in each storage type it serves (PAGODA_DTYPE 0 float, 1 float16, 2 bfloat16) and the variants above,
// for sm_80 (sm_89 where it needs FP8) and sm_90 (the *_sm90a sources for sm_90a): a kernel that does not compile
// cannot land.
test('every .cu compiles with nvcc for sm_80 (FP8 kernels: sm_89) and sm_90, and sm_90a', {
  skip: nvcc ? false : 'nvcc not on PATH',
}, async () => {
  const out = mkdtempSync(join(tmpdir(), 'pagoda-nvcc-'));
  try {
    const jobs = sources.flatMap((f) =>
      buildsOf(f).map(({ dtype, defines }, i) => async () => {
        const args = ['--fatbin', '-std=c++17', `-DPAGODA_DTYPE=${dtype}`, ...defines.map((d) => `-D${d}`)];
        args.push(`-I${kernelsDir}`);
        for (const sm of archsOf(f, defines)) args.push('-gencode', `arch=compute_${sm},code=sm_${sm}`);
        if (spillChecked(f)) args.push('-Xptxas', '-v');
        args.push('-o', join(out, `${f}.${i}.fatbin`), join(kernelsDir, f));
        try {
          const { stderr } = await run('nvcc', args);
          if (spillChecked(f)) {
            const spills = [...stderr.matchAll(/(\d+) bytes spill (stores|loads)/g)].map((m) => Number(m[1]));
            assert.ok(spills.length > 0, `ptxas reported no spill counts for ${f}:\n${stderr}`);
            assert.ok(
              spills.every((n) => n === 0),
              `${f} (PAGODA_DTYPE=${dtype} ${defines.join(' ')}) spills registers:\n${stderr}`,
            );
          }
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
          const what = [`PAGODA_DTYPE=${dtype}`, ...defines].join(' ');
          assert.fail(`nvcc ${f} (${what}):\n${(err as { stderr?: string }).stderr ?? err}`);
        }
      }),
    );
    // Two at a time: CI has two cores.
    const queue = [...jobs];
    await Promise.all(
      [0, 1].map(async () => {
        for (let job = queue.shift(); job; job = queue.shift()) await job();
      }),
    );
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
