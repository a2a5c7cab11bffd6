import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeDefines, mergeDefines, prefillDefines } from '../../src/backend/cuda/flash-attention.ts';
import { sm90aPrefillDefines } from '../../src/backend/cuda/flash-prefill-sm90a.ts';
import { defaultConfigs } from '../../src/backend/cuda/flash-sizing.ts';
import { gemvShape, gemvWins, pickGemvConfig, readGemvTable } from '../../src/backend/cuda/gemv-config.ts';
import { type KernelPlanModel, kernelPlan } from '../../src/backend/cuda/kernel-plan.ts';
import { gemvDefines } from '../../src/backend/cuda/linear.ts';
import { loadModelConfig } from '../../src/loader/hf-config.ts';
import { kernelPlanModel } from '../../src/runner/kernel-plan-model.ts';

const table = readGemvTable();
const h100 = { name: table.device, smCount: table.smCount };
const llama = kernelPlanModel(loadModelConfig(new URL('../../bench/configs/llama3-8b', import.meta.url).pathname), 3);
const key = (r: { file: string; defines: object }) =>
  `${r.file} ${JSON.stringify(Object.entries(r.defines).sort(([a], [b]) => a.localeCompare(b)))}`;
const keys = (dtype: 'bf16' | 'f32', model: KernelPlanModel = llama, gemv = true) =>
  kernelPlan({ dtype, device: h100, gemvTable: table, gemv }, model).map(key);

test('the sm_90a prefill module is planned only where the backend runs it (PAGODA_PREFILL_KERNEL=wgmma on Hopper)', () => {
  const sm90a = { file: 'flash_prefill_sm90a', defines: sm90aPrefillDefines('bf16', 128) };
  const plan = (sm90aPrefill: boolean) =>
    kernelPlan({ dtype: 'bf16', device: h100, gemvTable: table, gemv: true, sm90aPrefill }, llama).map(key);
  assert.ok(plan(true).includes(key(sm90a)));
  assert.ok(!plan(false).some((k) => k.startsWith('flash_prefill_sm90a ')));
  // The mma.sync kernel stays planned: it serves what the sm_90a kernel leaves (soft-caps, quantized caches).
  assert.ok(plan(true).some((k) => k.startsWith('flash_prefill ')));
});

test('a Llama-3-8B shape: the linears of a layer and the LM head, one head size, SiLU', () => {
  assert.deepEqual(llama.attention, [{ headDim: 128, group: 4 }]);
  assert.deepEqual(llama.linears, [
    { m: 6144, k: 4096, gated: false },
    { m: 4096, k: 4096, gated: false },
    { m: 14336, k: 4096, gated: true },
    { m: 4096, k: 14336, gated: false },
    { m: 128256, k: 4096, gated: false },
  ]);
  assert.equal(llama.act, 'silu');
  assert.equal(llama.normOffset, 0);
});

test('bf16: the per-file modules, flash attention for head size 128, and the GEMV builds the launchers ask for', () => {
  const plan = keys('bf16');
  assert.equal(new Set(plan).size, plan.length, 'each module once');
  const cfg = defaultConfigs(128);
  for (const want of [
    { file: 'flash_prefill', defines: prefillDefines('bf16', 128, cfg.prefill) },
    { file: 'paged_decode', defines: decodeDefines('bf16', 128, cfg.decode) },
    { file: 'paged_decode', defines: mergeDefines('bf16') },
    { file: 'embedding', defines: { PAGODA_DTYPE: 2 } },
    { file: 'norm', defines: { PAGODA_DTYPE: 2 } },
    { file: 'norm', defines: { PAGODA_DTYPE: 2, RES_IN_F32: 1 } },
    { file: 'elementwise', defines: { PAGODA_DTYPE: 2, B_F32: 0 } },
    { file: 'kv_cache', defines: { PAGODA_DTYPE: 2 } },
    { file: 'convert', defines: { PAGODA_DTYPE: 2 } },
  ])
    assert.ok(plan.includes(key(want)), `${key(want)} is planned`);
  for (const T of [1, 2, 4]) {
    const shape = gemvShape(T, 14336, 4096, true);
    const want = {
      file: 'gemv',
      defines: { PAGODA_DTYPE: 2, ...gemvDefines(shape, pickGemvConfig(table, shape, h100)) },
    };
    assert.equal(plan.includes(key(want)), gemvWins(table, shape, h100), `gate/up GEMV for ${T} rows where it wins`);
  }
  assert.ok(
    plan.some((k) => k.startsWith('gemv ')),
    'some GEMV builds are planned',
  );
  assert.ok(!plan.some((k) => k.includes('"TMAX",8')), 'no GEMV build past 3 sequences (TMAX 4)');
  assert.ok(!plan.some((k) => k.startsWith('attention ')), 'no simple attention kernel in bf16');
});

test('f32 takes the simple attention kernel; with the GEMV off no GEMV is built', () => {
  const plan = keys('f32', llama, false);
  assert.ok(plan.includes(key({ file: 'attention', defines: { PAGODA_DTYPE: 0, EPL: 4, GMAX: 4 } })));
  assert.ok(!plan.some((k) => k.startsWith('flash_prefill ') || k.startsWith('gemv ')));
  const gemma = keys('bf16', { ...llama, act: 'gelu_tanh', normOffset: 1 });
  assert.ok(gemma.includes(key({ file: 'norm', defines: { PAGODA_DTYPE: 2, W_OFFSET: 1 } })));
  assert.ok(gemma.includes(key({ file: 'elementwise', defines: { PAGODA_DTYPE: 2, ACT: 1 } })));
});

test('a model with quantized matrices: one quant.cu module per block type, in the storage dtype, as the launchers ask', () => {
  const plan = keys('bf16', { ...llama, quantTypes: ['q4_k', 'q6_k'] });
  for (const QTYPE of [7, 9])
    assert.ok(plan.includes(key({ file: 'quant', defines: { PAGODA_DTYPE: 2, QTYPE } })), `QTYPE ${QTYPE}`);
  assert.equal(plan.filter((k) => k.startsWith('quant ')).length, 2);
  assert.ok(!keys('bf16').some((k) => k.startsWith('quant ')), 'none for a 16-bit model');
  // The integer GEMV's activation quantization: once per dtype, on the 16-bit route only, by its own launch and by
  // the norms' and the gated product's builds that write it (XQ 1) beside the plain ones.
  assert.ok(plan.includes(key({ file: 'quant_act', defines: { PAGODA_DTYPE: 2 } })));
  for (const defines of [{}, { XQ: 1 }, { RES_IN_F32: 1, XQ: 1 }, { RES_IN_F32: 0, XQ: 1 }])
    assert.ok(
      plan.includes(key({ file: 'norm', defines: { PAGODA_DTYPE: 2, ...defines } })),
      key({ file: 'norm', defines }),
    );
  for (const defines of [{}, { XQ: 1 }])
    assert.ok(
      plan.includes(key({ file: 'elementwise', defines: { PAGODA_DTYPE: 2, ...defines } })),
      key({ file: 'elementwise', defines }),
    );
  // Decode attention writing O for o_proj (head size 128: whole groups per head), the split merge too.
  const cfg = defaultConfigs(128).decode;
  for (const form of [null, 'q8' as const]) {
    assert.ok(plan.includes(key({ file: 'paged_decode', defines: decodeDefines('bf16', 128, cfg, undefined, form) })));
    assert.ok(plan.includes(key({ file: 'paged_decode', defines: mergeDefines('bf16', form) })), `merge ${form}`);
  }
  const f32 = keys('f32', { ...llama, quantTypes: ['q4_k'] });
  assert.ok(!f32.some((k) => k.startsWith('quant_act ') || k.includes('"XQ"')), 'f32: exact x');
  assert.ok(!keys('bf16').some((k) => k.includes('"XQ"')), 'none for a 16-bit model');
});
