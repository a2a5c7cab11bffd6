import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { declareKernel } from '../../src/backend/cuda/kernel.ts';
import { RMS_NORM } from '../../src/backend/cuda/norm.ts';
import { exportedDeclarations, kernelSources, parseKernels, signatureProblems } from '../helpers/cuda-signatures.ts';

const read = (path: string) => readFileSync(path, 'utf8');
const decls = await exportedDeclarations();

/** The kernel sources with `file`.cu's text passed through `edit` (which must change it). */
function sourcesWith(file: string, edit: (text: string) => string) {
  return kernelSources((path) => {
    if (!path.endsWith(`/${file}.cu`)) return read(path);
    const text = read(path);
    const edited = edit(text);
    assert.notEqual(edited, text, `the edit of ${file}.cu changed nothing`);
    return edited;
  });
}

// A launch packs its arguments by the declaration alone: a declaration that disagrees with its .cu passes garbage
// to the GPU. Every kernel the .cu files define (macro instances included) is declared once, in order, with its types.
test('every extern "C" kernel is declared once with its parameters in order, named and typed as in its .cu', () => {
  const sources = kernelSources(read);
  assert.deepEqual(signatureProblems(sources, decls), []);
  const kernels = [...sources.values()].flat().map((k) => k.name);
  assert.ok(kernels.length >= 22, `found ${kernels.length} kernels: ${kernels.join(', ')}`);
  for (const k of [
    'flash_prefill_hd64',
    'flash_prefill_hd80',
    'flash_prefill_hd96',
    'flash_prefill_hd128',
    'flash_prefill_hd256',
    'paged_decode_hd64',
    'paged_decode_hd80',
    'paged_decode_hd96',
    'paged_decode_hd128',
    'paged_decode_hd256',
  ])
    assert.ok(kernels.includes(k), `the macro instance ${k} was found`);
});

test('the parser reads pointers, int, unsigned, long long and float, and expands kernel macros with ##', () => {
  const src = `#include "common.cuh"
#define K(D, E) \\
  extern "C" __global__ void __launch_bounds__(32 * D, 2) k_hd##D(const T* __restrict__ q, int n_##E) { \\
    PDL_ENTER(); }
K(64, a)
K(128, b)
// extern "C" __global__ void commented_out(int x) {}
extern "C" __global__ void plain(float* out, long long rows, unsigned int seed, float scale, double bad) {}`;
  assert.deepEqual(parseKernels(src), [
    {
      name: 'plain',
      params: [
        { name: 'out', type: 'ptr' },
        { name: 'rows', type: 'i64' },
        { name: 'seed', type: 'u32' },
        { name: 'scale', type: 'f32' },
        { name: 'bad', type: 'double' },
      ],
    },
    {
      name: 'k_hd64',
      params: [
        { name: 'q', type: 'ptr' },
        { name: 'n_a', type: 'i32' },
      ],
    },
    {
      name: 'k_hd128',
      params: [
        { name: 'q', type: 'ptr' },
        { name: 'n_b', type: 'i32' },
      ],
    },
  ]);
});

test('a .cu parameter retyped, renamed or reordered fails naming the kernel and the parameter', () => {
  const retyped = sourcesWith('rope', (t) => t.replace('float mscale', 'int mscale'));
  assert.deepEqual(signatureProblems(retyped, decls), [
    'kernels/rope.cu rope parameter 10 (mscale): the .cu has i32, the declaration f32',
  ]);
  const swapped = sourcesWith('rope', (t) =>
    t.replace('int num_q_heads, int num_kv_heads', 'int num_kv_heads, int num_q_heads'),
  );
  assert.deepEqual(signatureProblems(swapped, decls), [
    'kernels/rope.cu rope parameter 5 (num_kv_heads): declared as numQHeads, expected numKvHeads',
    'kernels/rope.cu rope parameter 6 (num_q_heads): declared as numKvHeads, expected numQHeads',
  ]);
  const longer = sourcesWith('kv_cache', (t) => t.replace('int row)', 'int row, int stride)'));
  assert.deepEqual(signatureProblems(longer, decls), [
    'kernels/kv_cache.cu reshape_and_cache: the .cu takes 7 parameters, the declaration 6',
    'kernels/kv_cache.cu reshape_and_cache parameter 7 (stride): declared as (none), expected stride',
    'kernels/kv_cache.cu reshape_and_cache parameter 7 (stride): the .cu has i32, the declaration (none)',
  ]);
});

test('a kernel without a declaration, a new macro instance and a mistyped declaration all fail', () => {
  const added = sourcesWith('flash_prefill', (t) => `${t}\nPAGODA_FLASH_PREFILL(112)\n`);
  assert.deepEqual(signatureProblems(added, decls), ['kernels/flash_prefill.cu flash_prefill_hd112: no declaration']);

  const mistyped = declareKernel('norm', 'rms_norm', { ...RMS_NORM.args, eps: 'i32' });
  const sources = kernelSources(read);
  const others = decls.filter((d) => d !== RMS_NORM);
  assert.deepEqual(signatureProblems(sources, [...others, mistyped]), [
    'kernels/norm.cu rms_norm parameter 4 (eps): the .cu has f32, the declaration i32',
  ]);
  assert.deepEqual(signatureProblems(sources, [...decls, declareKernel('norm', 'rms_norm', RMS_NORM.args)]), [
    'kernels/norm.cu rms_norm: declared twice',
  ]);
  assert.deepEqual(signatureProblems(sources, [...decls, declareKernel('norm', 'fused_norm', {})]), [
    'kernels/norm.cu fused_norm: declared, but the .cu has no such extern "C" __global__ kernel',
  ]);
});
