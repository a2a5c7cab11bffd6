import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DType, Tensor } from '../../src/backend/backend.ts';
import { simpleAttentionDefines, simpleSelfVariant } from '../../src/backend/cuda/attention.ts';
import type { CudaContext } from '../../src/backend/cuda/context.ts';
import { actDefines, actMul, add, addBias } from '../../src/backend/cuda/elementwise.ts';
import {
  decodeDefines,
  mergeDefines,
  prefillDefines,
  selfPrefillVariant,
} from '../../src/backend/cuda/flash-attention.ts';
import { sm90aPrefillDefines } from '../../src/backend/cuda/flash-prefill-sm90a.ts';
import { defaultConfigs } from '../../src/backend/cuda/flash-sizing.ts';
import { type Fp8GemvChoice, fp8GemvDefines, fp8GemvRule } from '../../src/backend/cuda/fp8-gemv.ts';
import {
  fp8CudaCoreGemvRule,
  gemvShape,
  gemvWins,
  pickGemvConfig,
  readGemvTable,
} from '../../src/backend/cuda/gemv-config.ts';
import type { KernelDecl } from '../../src/backend/cuda/kernel.ts';
import { type KernelPlanModel, kernelPlan } from '../../src/backend/cuda/kernel-plan.ts';
import { kvQuantDefines } from '../../src/backend/cuda/kv-layout.ts';
import { fp8CudaCoreGemvDefines, gemvDefines } from '../../src/backend/cuda/linear.ts';
import { type Defines, kernelsDir } from '../../src/backend/cuda/modules.ts';
import { groupedGemmKernel, MMA_TILE_BUILDS, moeGemvDefines } from '../../src/backend/cuda/moe.ts';
import { addRmsNorm, layerNorm, rmsNorm } from '../../src/backend/cuda/norm.ts';
import { gemvRopeDefines } from '../../src/backend/cuda/qkv-rope.ts';
import { CudaTensor, DTYPE_DEFINE } from '../../src/backend/cuda/tensor.ts';
import { hfConfigFromGguf } from '../../src/loader/gguf/config.ts';
import type { ModelConfig } from '../../src/loader/hf-config.ts';
import { loadModelConfig, parseModelConfig } from '../../src/loader/hf-config.ts';
import { QWEN_MOE } from '../../src/models/moe.ts';
import { poolingStack } from '../../src/models/pooling-load.ts';
import { pickArchitecture } from '../../src/models/registry.ts';
import type { QuantType } from '../../src/primitives/ggml-types.ts';
import { type KernelPlanChoices, kernelPlanModel } from '../../src/runner/kernel-plan-model.ts';

/** A committed fixture's config. */
const fixtureModel = (name: string) => loadModelConfig(new URL(`../fixtures/models/${name}`, import.meta.url).pathname);
/** A decoder's plan as the runner makes it: with its architecture's MoE family and kernel shape. */
const decoderPlan = (c: ModelConfig, rows: number, choices: KernelPlanChoices = {}) => {
  const arch = pickArchitecture(c, 'config.json');
  return kernelPlanModel(c, rows, { moe: arch.moe, shape: arch.kernelShape, ...choices });
};

const h100 = { name: 'NVIDIA H100 80GB HBM3', smCount: 132 };
const table = readGemvTable(h100);
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
    { m: 6144, k: 4096, gated: false, fp8: false },
    { m: 4096, k: 4096, gated: false, fp8: false },
    { m: 14336, k: 4096, gated: true, fp8: false },
    { m: 4096, k: 14336, gated: false, fp8: false },
    { m: 128256, k: 4096, gated: false, fp8: false },
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
    { file: 'paged_decode_merge', defines: mergeDefines('bf16') },
    { file: 'embedding', defines: { PAGODA_DTYPE: 2 } },
    { file: 'norm', defines: { PAGODA_DTYPE: 2 } },
    { file: 'norm', defines: { PAGODA_DTYPE: 2, RES_IN_F32: 1 } },
    { file: 'elementwise', defines: { PAGODA_DTYPE: 2 } },
    { file: 'elementwise', defines: { PAGODA_DTYPE: 2, B_F32: 1 } },
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

test("the q/k/v GEMV's ROPE build per row bucket where the plain one runs, with its configuration; none where RoPE has head norms or the weights or cache are not 16-bit", () => {
  assert.deepEqual(llama.qkvRope, { m: 6144, k: 4096 });
  const ropeBuilds = (model: KernelPlanModel) => keys('bf16', model).filter((k) => k.includes('"ROPE",1'));
  const want = [1, 2, 4]
    .map((T) => gemvShape(T, 6144, 4096, false))
    .filter((shape) => gemvWins(table, shape, h100))
    .map((shape) =>
      key({
        file: 'gemv',
        defines: { PAGODA_DTYPE: 2, ...gemvRopeDefines(shape, pickGemvConfig(table, shape, h100)) },
      }),
    );
  assert.ok(want.length > 0);
  assert.deepEqual(ropeBuilds(llama), want);
  assert.deepEqual(
    keys('bf16', llama, false).filter((k) => k.includes('"ROPE",1')),
    [],
    'the GEMV off',
  );
  const config = (name: string) => loadModelConfig(new URL(`../../bench/configs/${name}`, import.meta.url).pathname);
  assert.deepEqual(kernelPlanModel(config('phi4-mini'), 3).qkvRope, { m: 5120, k: 3072 });
  const fixture = (name: string) => loadModelConfig(new URL(`../fixtures/configs/${name}`, import.meta.url).pathname);
  assert.ok(kernelPlanModel(fixture('gemma-2-9b'), 3).qkvRope, 'Gemma 2');
  for (const [what, model] of [
    ['Qwen3 (head norms)', decoderPlan(config('qwen3-30b-a3b'), 3)],
    ['Gemma 3 (head norms)', decoderPlan(fixture('gemma-3-1b-it'), 3)],
    ['OLMo 2 (q/k normed across heads)', decoderPlan(fixtureModel('tiny-olmo2'), 3)],
    ['EXAONE 4 (head norms)', decoderPlan(fixtureModel('tiny-exaone4'), 3)],
    ['FP8 weights', kernelPlanModel(config('llama3-8b'), 3, { fp8: true })],
    ['GGUF blocks', kernelPlanModel(config('llama3-8b'), 3, { quantTypes: ['q4_k'] })],
    ['an fp8 cache', kernelPlanModel(config('llama3-8b'), 3, { kvQuant: 'fp8' })],
    ['a decoder embedder', kernelPlanModel(config('qwen3-embedding-0.6b'), 3, { pooling: 'decoder' })],
  ] as const) {
    assert.equal(model.qkvRope, undefined, what);
    assert.deepEqual(ropeBuilds(model), [], what);
  }
});

test('f32 takes the simple attention kernel; with the GEMV off no GEMV is built', () => {
  const plan = keys('f32', llama, false);
  assert.ok(plan.includes(key({ file: 'attention', defines: { PAGODA_DTYPE: 0, EPL: 4, GMAX: 4 } })));
  assert.ok(!plan.some((k) => k.startsWith('flash_prefill ') || k.startsWith('gemv ')));
  const gemma = keys('bf16', { ...llama, act: 'gelu_tanh', normOffset: 1 });
  assert.ok(gemma.includes(key({ file: 'norm', defines: { PAGODA_DTYPE: 2, W_OFFSET: 1 } })));
  assert.ok(gemma.includes(key({ file: 'elementwise', defines: { PAGODA_DTYPE: 2, ACT: 1 } })));
});

const gemmaConfig = (name: string) =>
  kernelPlanModel(loadModelConfig(new URL(`../fixtures/configs/${name}`, import.meta.url).pathname), 3);

test("Gemma 2/3's sandwich norms: add_rms_norm's NORM_X builds (both residual inputs, each x form) instead of the plain ones; Gemma 1 the plain ones", () => {
  // The norm modules besides rms_norm's own (W_OFFSET 1, and its x forms).
  const addNorms = (model: KernelPlanModel) =>
    keys('bf16', model).filter((k) => k.startsWith('norm ') && (k.includes('RES_IN_F32') || k.includes('NORM_X')));
  const addNorm = (defines: object) => key({ file: 'norm', defines: { PAGODA_DTYPE: 2, W_OFFSET: 1, ...defines } });
  // The first residual add reads the embeddings (stored as T: rms_norm's defines), the rest the float stream.
  const residuals = [{}, { RES_IN_F32: 1 }];
  for (const name of ['gemma-2-9b', 'gemma-3-1b-it', 'gemma-3-4b-it']) {
    const gemma = gemmaConfig(name);
    assert.equal(gemma.sandwichNorms, true, name);
    assert.deepEqual(addNorms(gemma).sort(), residuals.map((r) => addNorm({ ...r, NORM_X: 1 })).sort(), name);
    // GGUF blocks: the norms also write q8 groups for the integer GEMV.
    const quantized = addNorms({ ...gemma, quantTypes: ['q4_k'] });
    for (const r of residuals)
      for (const defines of [{}, { XQ: 1 }])
        assert.ok(
          quantized.includes(addNorm({ ...r, NORM_X: 1, ...defines })),
          `${name} ${key({ file: '', defines: { ...r, ...defines } })}`,
        );
    assert.ok(!quantized.some((k) => !k.includes('NORM_X')), `${name}: no plain add_rms_norm build`);
  }
  const gemma1 = gemmaConfig('gemma-2b');
  assert.equal(gemma1.sandwichNorms, false);
  assert.deepEqual(addNorms(gemma1), [addNorm({ RES_IN_F32: 1 })], 'the embeddings add: rms_norm module');
  assert.equal(llama.sandwichNorms, false);
});

test('a model with quantized matrices: one quant.cu module per block type (and quant_gemm.cu per type it decodes), in the storage dtype, as the launchers ask', () => {
  const plan = keys('bf16', { ...llama, quantTypes: ['q4_k', 'q6_k'] });
  for (const QTYPE of [7, 9])
    assert.ok(plan.includes(key({ file: 'quant', defines: { PAGODA_DTYPE: 2, QTYPE } })), `QTYPE ${QTYPE}`);
  assert.equal(plan.filter((k) => k.startsWith('quant ')).length, 2);
  assert.ok(!keys('bf16').some((k) => k.startsWith('quant ')), 'none for a 16-bit model');
  // The fused GEMM (quant_gemm.cu) for each type it decodes, in 16 bits only: q3_k keeps the dequantize path.
  const gemm = (dtype: 'bf16' | 'f32', quantTypes: QuantType[]) =>
    keys(dtype, { ...llama, quantTypes }).filter((k) => k.startsWith('quant_gemm '));
  assert.deepEqual(
    gemm('bf16', ['q4_k', 'q6_k', 'q3_k']).sort(),
    [7, 9].map((QTYPE) => key({ file: 'quant_gemm', defines: { PAGODA_DTYPE: 2, QTYPE } })).sort(),
  );
  assert.deepEqual(gemm('f32', ['q4_k']), [], 'f32: no fused GEMM');
  // The integer GEMV's activation quantization: once per dtype, on the 16-bit route only, by its own launch and by
  // the norms' and the gated product's builds that write it (XQ 1) beside the plain ones.
  assert.ok(plan.includes(key({ file: 'quant_act', defines: { PAGODA_DTYPE: 2 } })));
  for (const defines of [{}, { XQ: 1 }, { RES_IN_F32: 1, XQ: 1 }])
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
    assert.ok(plan.includes(key({ file: 'paged_decode_merge', defines: mergeDefines('bf16', form) })), `merge ${form}`);
  }
  const f32 = keys('f32', { ...llama, quantTypes: ['q4_k'] });
  assert.ok(!f32.some((k) => k.startsWith('quant_act ') || k.includes('"XQ"')), 'f32: exact x');
  assert.ok(!keys('bf16').some((k) => k.includes('"XQ"')), 'none for a 16-bit model');
});

test('a quantized KV cache: its write and its attention builds (quantized decode tiles), none of the 16-bit cache', () => {
  for (const quant of ['fp8', 'q8_0'] as const) {
    const plan = keys('bf16', { ...llama, kvQuant: quant });
    const cfg = defaultConfigs(128, quant);
    assert.notDeepEqual(defaultConfigs(80, quant).decode, defaultConfigs(80).decode, 'its own decode tiles at hd80');
    for (const want of [
      { file: 'kv_cache', defines: { PAGODA_DTYPE: 2, ...kvQuantDefines(quant) } },
      { file: 'flash_prefill', defines: prefillDefines('bf16', 128, cfg.prefill, {}, quant) },
      { file: 'paged_decode', defines: decodeDefines('bf16', 128, cfg.decode, quant) },
      { file: 'paged_decode_merge', defines: mergeDefines('bf16') },
    ])
      assert.ok(plan.includes(key(want)), `${quant}: ${key(want)}`);
    assert.ok(!plan.includes(key({ file: 'kv_cache', defines: { PAGODA_DTYPE: 2 } })), 'no 16-bit cache write');
    const quantized = plan.filter((k) => k.includes('PAGODA_KV_QUANT'));
    assert.equal(quantized.length, 3, `${quant}: the write, prefill and decode`);
    assert.ok(!plan.some((k) => k.startsWith('flash_prefill ') && !k.includes('PAGODA_KV_QUANT')));
  }
  assert.ok(!keys('bf16').some((k) => k.includes('PAGODA_KV_QUANT')), 'none for a 16-bit cache');
  // q8_0 heads of 80 go to the simple kernel, its quantized build; no sm_90a prefill for a quantized cache.
  const hd80 = keys('bf16', { ...llama, attention: [{ headDim: 80, group: 4 }], kvQuant: 'q8_0' });
  assert.ok(
    hd80.includes(key({ file: 'attention', defines: { PAGODA_DTYPE: 2, EPL: 4, GMAX: 4, PAGODA_KV_QUANT: 2 } })),
  );
  assert.ok(!hd80.some((k) => k.startsWith('flash_prefill ') || k.startsWith('paged_decode ')));
  const sm90a = kernelPlan(
    { dtype: 'bf16', device: h100, gemvTable: table, gemv: true, sm90aPrefill: true },
    {
      ...llama,
      kvQuant: 'fp8',
    },
  );
  assert.ok(!sm90a.some((r) => r.file === 'flash_prefill_sm90a'));
});

test('FP8 layer weights: fp8_weights, one fp8_gemv build gated and one not, the e4m3 producers; no 16-bit GEMV for them', () => {
  const config = loadModelConfig(new URL('../../bench/configs/llama3-8b', import.meta.url).pathname);
  const fp8 = kernelPlanModel(config, 3, { fp8: true });
  const plan = (fp8Gemv: Fp8GemvChoice | null) =>
    kernelPlan({ dtype: 'bf16', device: h100, gemvTable: table, gemv: true, fp8Gemv }, fp8).map(key);
  const with8 = plan('tensor-cores');
  assert.ok(with8.includes(key({ file: 'fp8_weights', defines: { PAGODA_DTYPE: 2 } })));
  for (const gated of [false, true])
    assert.ok(
      with8.includes(
        key({ file: 'fp8_gemv', defines: { PAGODA_DTYPE: 2, ...fp8GemvDefines(fp8GemvRule(gated), gated, 'silu') } }),
      ),
      `gated ${gated}`,
    );
  assert.equal(with8.filter((k) => k.startsWith('fp8_gemv ')).length, 2);
  assert.ok(!plan(null).some((k) => k.startsWith('fp8_gemv ')), 'the FP8 GEMV off: cuBLASLt only');
  for (const defines of [{ XQ: 2 }, { RES_IN_F32: 1, XQ: 2 }])
    assert.ok(with8.includes(key({ file: 'norm', defines: { PAGODA_DTYPE: 2, ...defines } })));
  assert.ok(with8.includes(key({ file: 'elementwise', defines: { PAGODA_DTYPE: 2, XQ: 2 } })));
  // Only the LM head (16-bit) keeps 16-bit GEMV builds.
  const gemvs = with8.filter((k) => k.startsWith('gemv '));
  const lmHeadOnly = { ...llama, linears: [llama.linears.at(-1)!], qkvRope: undefined };
  const head = keys('bf16', lmHeadOnly).filter((k) => k.startsWith('gemv '));
  assert.deepEqual(gemvs, head);
  const plain = keys('bf16');
  assert.ok(!plain.some((k) => k.startsWith('fp8_') || k.includes('"XQ",2')), 'none for 16-bit weights');
  // The CUDA-core route: gemv.cu's FP8 build per FP8 linear and row bucket up to 3 sequences (TMAX 1, 2, 4), as the
  // launcher picks it; no fp8_gemv; the e4m3 producers still, for the GEMM's rows (prefill).
  const cudaCores = plan('cuda-cores');
  assert.ok(!cudaCores.some((k) => k.startsWith('fp8_gemv ')));
  const fp8Linears = fp8.linears.filter((l) => l.fp8);
  assert.ok(fp8Linears.length >= 4, 'q/k/v, o, gate/up, down');
  const want = [1, 2, 4].flatMap((T) =>
    fp8Linears.map((l) => {
      const shape = gemvShape(T, l.m, l.k, l.gated);
      const defines = fp8CudaCoreGemvDefines(shape, fp8CudaCoreGemvRule(shape), 'silu');
      return key({ file: 'gemv', defines: { PAGODA_DTYPE: 2, ...defines } });
    }),
  );
  for (const k of want) assert.ok(cudaCores.includes(k), k);
  assert.deepEqual(
    cudaCores.filter((k) => k.includes('"WFP8",1')),
    [...new Set(want)],
  );
  assert.ok(cudaCores.includes(key({ file: 'norm', defines: { PAGODA_DTYPE: 2, XQ: 2 } })));
  // 'auto' (the default): the CUDA-core builds of one row, and the tensor-core GEMV for two and more.
  const auto = plan('auto');
  assert.deepEqual(
    auto.filter((k) => k.includes('"WFP8",1')),
    [...new Set(want.slice(0, fp8Linears.length))],
  );
  assert.equal(auto.filter((k) => k.startsWith('fp8_gemv ')).length, 2);
});

test('a mixture-of-experts model (Qwen3-30B-A3B): routing, moe_gemv per token bucket, the grouped GEMM, no dense MLP', () => {
  const config = loadModelConfig(new URL('../../bench/configs/qwen3-30b-a3b', import.meta.url).pathname);
  const moe = kernelPlanModel(config, 3, { moe: QWEN_MOE });
  assert.deepEqual(moe.moe, { hidden: 2048, expertWidth: 768 });
  assert.ok(
    moe.linears.some((l) => l.m === 128 && l.k === 2048),
    'the router',
  );
  assert.ok(!moe.linears.some((l) => l.m === 6144 || l.k === 6144), 'no dense MLP: every layer is sparse');
  const plan = keys('bf16', moe);
  assert.ok(plan.includes(key({ file: 'moe', defines: { PAGODA_DTYPE: 2 } })));
  for (const T of [1, 2, 4]) {
    for (const [k, gated] of [
      [2048, true],
      [768, false],
    ] as const)
      assert.ok(
        plan.includes(key({ file: 'moe_gemv', defines: { PAGODA_DTYPE: 2, ...moeGemvDefines('bf16', T, k, gated) } })),
      );
  }
  assert.equal(plan.filter((k) => k.startsWith('moe_gemv ')).length, 6, 'TMAX 1, 2, 4: 3 sequences');
  assert.equal(groupedGemmKernel('bf16', 768).file, 'moe_mma');
  for (const build of MMA_TILE_BUILDS)
    assert.ok(plan.includes(key({ file: 'moe_mma', defines: { PAGODA_DTYPE: 2, ...build } })), JSON.stringify(build));
  assert.equal(plan.filter((k) => k.startsWith('moe_mma ')).length, 2, 'the two tile builds');
  const dense = kernelPlanModel(config, 3);
  assert.equal(dense.moe, undefined);
  assert.ok(!keys('bf16').some((k) => k.startsWith('moe')), 'none for a dense model');
});

const poolingModel = (name: string) => {
  const config = loadModelConfig(new URL(`../../bench/configs/${name}`, import.meta.url).pathname);
  return kernelPlanModel(config, 8192, { pooling: poolingStack(config) });
};
// Distinct keys, sorted: SiLU's act_mul build is elementwise.cu's plain one.
const sorted = (ks: string[]) => [...new Set(ks)].sort();

test('a BERT-like encoder: LayerNorm, learned positions, the bidirectional no-cache prefill, pooling; nothing of decode', () => {
  const bert = poolingModel('bert-base');
  assert.deepEqual(bert.selfAttention, { causal: false });
  assert.deepEqual(
    bert.linears.map((l) => [l.m, l.k, l.gated]),
    [
      [2304, 768, false],
      [768, 768, false],
      [3072, 768, false],
      [768, 3072, false],
    ],
    'q/k/v, o, the ungated up and down; no LM head',
  );
  const T = (defines: object) => ({ PAGODA_DTYPE: 2, ...defines });
  assert.deepEqual(
    sorted(keys('bf16', bert, false)),
    sorted(
      [
        { file: 'convert', defines: T({}) },
        { file: 'embedding', defines: T({}) },
        { file: 'pooling', defines: T({}) },
        { file: 'elementwise', defines: T({}) },
        { file: 'norm', defines: T({}) },
        {
          file: 'flash_prefill',
          defines: prefillDefines('bf16', 64, defaultConfigs(64).prefill, selfPrefillVariant(false)),
        },
      ].map(key),
    ),
  );
  // float32: the simple kernel's no-cache build (SELF, CAUSAL 0).
  const f32 = keys('f32', bert, false);
  const simple = {
    file: 'attention',
    defines: { PAGODA_DTYPE: 0, ...simpleAttentionDefines(64, 1, simpleSelfVariant(false)) },
  };
  assert.ok(f32.includes(key(simple)));
  assert.ok(key(simple).includes('["SELF",1]'));
  assert.ok(!f32.some((k) => k.startsWith('flash_prefill')));
});

test('GPT-2: LayerNorm, learned positions and the ungated GELU MLP (elementwise.cu), so no RoPE, RMSNorm or gated build', () => {
  const gpt2 = decoderPlan(fixtureModel('tiny-gpt2'), 4);
  assert.deepEqual([gpt2.norm, gpt2.rope, gpt2.act], ['layer', false, null]);
  assert.ok(
    gpt2.linears.every((l) => !l.gated),
    'no gated linear',
  );
  // One build each of norm.cu (LayerNorm) and elementwise.cu (the adds in the storage type, GELU); a Llama's plan has
  // rope.cu and the float32 residual's builds (RES_IN_F32, B_F32) besides.
  const perFile = keys('bf16', gpt2).filter((k) => /^(norm|rope|elementwise) /.test(k));
  assert.deepEqual(
    sorted(perFile),
    sorted([
      key({ file: 'elementwise', defines: { PAGODA_DTYPE: 2 } }),
      key({ file: 'norm', defines: { PAGODA_DTYPE: 2 } }),
    ]),
  );
  assert.ok(
    keys('bf16').some((k) => k.startsWith('rope ')),
    "a Llama's plan has RoPE",
  );
});

test('a nomic-bert encoder (nomic-embed-text): LayerNorm with RoPE and the SiLU product, the bidirectional prefill', () => {
  const meta: Record<string, number | string> = {
    'general.architecture': 'nomic-bert',
    'nomic-bert.embedding_length': 768,
    'nomic-bert.feed_forward_length': 3072,
    'nomic-bert.block_count': 12,
    'nomic-bert.attention.head_count': 12,
    'nomic-bert.context_length': 2048,
    'nomic-bert.attention.layer_norm_epsilon': 1e-12,
    'nomic-bert.rope.freq_base': 1000,
    'nomic-bert.pooling_type': 1,
    'nomic-bert.vocab_size': 30522,
  };
  const view = { path: 'x.gguf', value: (k: string) => meta[k], hasTensor: () => false };
  const config = parseModelConfig(hfConfigFromGguf(view), 'x.gguf');
  const nomic = kernelPlanModel(config, 8192, { pooling: poolingStack(config) });
  assert.deepEqual(
    [nomic.selfAttention, nomic.norm, nomic.rope, nomic.act],
    [{ causal: false }, 'layer', true, 'silu'],
  );
  assert.deepEqual(
    nomic.linears.map((l) => [l.m, l.k, l.gated]),
    [
      [2304, 768, false],
      [768, 768, false],
      [3072, 768, true],
      [768, 3072, false],
    ],
    'fused q/k/v, o, the packed gate/up and down; no LM head',
  );
  const T = (defines: object) => ({ PAGODA_DTYPE: 2, ...defines });
  const plan = keys('bf16', nomic, false);
  for (const want of [
    { file: 'rope', defines: T({}) },
    { file: 'elementwise', defines: T(actDefines('silu')) },
    { file: 'norm', defines: T({}) },
    {
      file: 'flash_prefill',
      defines: prefillDefines('bf16', 64, defaultConfigs(64).prefill, selfPrefillVariant(false)),
    },
  ])
    assert.ok(plan.includes(key(want)), key(want));
  assert.ok(!plan.some((k) => k.includes('RES_IN_F32')), 'no RMSNorm builds');
});

test('a Qwen3-Embedding-like decoder: RMSNorm, RoPE, SiLU product, the causal no-cache prefill, pooling', () => {
  const qwen = poolingModel('qwen3-embedding-0.6b');
  assert.deepEqual(qwen.selfAttention, { causal: true });
  const T = (defines: object) => ({ PAGODA_DTYPE: 2, ...defines });
  const plan = (gemv: boolean, sm90aPrefill = false) =>
    kernelPlan({ dtype: 'bf16', device: h100, gemvTable: table, gemv, sm90aPrefill }, qwen).map(key);
  assert.deepEqual(
    sorted(plan(false)),
    sorted(
      [
        { file: 'convert', defines: T({}) },
        { file: 'embedding', defines: T({}) },
        { file: 'rope', defines: T({}) },
        { file: 'pooling', defines: T({}) },
        { file: 'elementwise', defines: T({}) },
        { file: 'elementwise', defines: T({ B_F32: 1 }) },
        { file: 'elementwise', defines: T(actDefines('silu')) },
        { file: 'norm', defines: T({}) },
        { file: 'norm', defines: T({ RES_IN_F32: 1 }) },
        {
          file: 'flash_prefill',
          defines: prefillDefines('bf16', 128, defaultConfigs(128).prefill, selfPrefillVariant(true)),
        },
      ].map(key),
    ),
  );
  // Steps of up to 32 tokens (a short query) take the GEMV where it wins, as CudaLinear.gemvFits asks; no LM head.
  const withGemv = plan(true);
  const want = new Set<string>();
  for (const rows of [1, 2, 4, 8, 16, 32])
    for (const l of qwen.linears) {
      const shape = gemvShape(rows, l.m, l.k, l.gated);
      if (gemvWins(table, shape, h100))
        want.add(key({ file: 'gemv', defines: T(gemvDefines(shape, pickGemvConfig(table, shape, h100), 'silu')) }));
    }
  assert.ok(want.size > 0);
  assert.deepEqual(sorted(withGemv.filter((k) => k.startsWith('gemv '))), sorted([...want]));
  // The no-cache prefill never takes the sm_90a kernel (it reads a paged cache).
  assert.deepEqual(sorted(plan(false, true)), sorted(plan(false)));
});

/** The value each define of `file`'s module has when it is not given (`#ifndef NAME` / `#define NAME value`). */
function sourceDefaults(file: string): Map<string, string> {
  const source = readFileSync(join(kernelsDir, `${file}.cu`), 'utf8');
  return new Map([...source.matchAll(/#ifndef (\w+)\s*\n#define \1 (\S+)/g)].map((m) => [m[1]!, m[2]!]));
}

/**
 * The norm and elementwise modules the launchers ask for in a forward: the norm, then the residual adds: the first over
 * the embeddings (stored as T), the later ones over the float stream (RMSNorm models; a LayerNorm model adds in the
 * storage type); add_bias and the gated product.
 */
function residualLaunches(dtype: 'bf16' | 'f32', m: KernelPlanModel): string[] {
  const asked: string[] = [];
  const ctx = {
    dtype,
    own: (t: Tensor) => t as CudaTensor,
    empty: (shape: readonly number[], dt: DType = dtype) => new CudaTensor([...shape], dt, 0n),
    rowThreads: () => [256],
    grid1d: () => [1],
    kernel: (decl: KernelDecl, defines: Defines = {}) => {
      asked.push(key({ file: decl.file, defines: { PAGODA_DTYPE: DTYPE_DEFINE[dtype], ...defines } }));
      return { launch: () => {} };
    },
  } as unknown as CudaContext;
  const rows = (width: number, dt: DType = dtype) => new CudaTensor([2, width], dt, 0n);
  const w = rows(64);
  const embeddings = rows(64);
  if (m.norm === 'rms') {
    const xNorm = m.sandwichNorms ? w : null;
    rmsNorm(ctx, embeddings, w, 1e-6, m.normOffset);
    const first = addRmsNorm(ctx, rows(64), embeddings, w, 1e-6, m.normOffset, null, xNorm);
    assert.equal(first.residual.dtype, 'f32', 'the stream after the first add is float');
    addRmsNorm(ctx, rows(64), first.residual, w, 1e-6, m.normOffset, null, xNorm);
    add(ctx, rows(64), first.residual);
  } else {
    layerNorm(ctx, embeddings, w, w, 1e-12);
    add(ctx, rows(64), embeddings);
  }
  addBias(ctx, 0n, 0n, 2, 64);
  if (m.act) actMul(ctx, rows(128), m.act);
  return asked;
}

test('the residual adds: each launched norm and add build planned once, and nothing else of norm.cu or elementwise.cu', () => {
  const models: [string, KernelPlanModel][] = [
    ['llama', llama],
    ['gemma-2b', gemmaConfig('gemma-2b')],
    ['gemma-2-9b (sandwich norms)', gemmaConfig('gemma-2-9b')],
    ['bert-base (LayerNorm)', poolingModel('bert-base')],
    ['qwen3-embedding', poolingModel('qwen3-embedding-0.6b')],
  ];
  for (const [name, m] of models)
    for (const dtype of ['bf16', 'f32'] as const) {
      const of = (file: string, ks: string[]) => sorted(ks.filter((k) => k.startsWith(`${file} `)));
      const plan = keys(dtype, m, false);
      const launched = residualLaunches(dtype, m);
      for (const file of ['norm', 'elementwise'])
        assert.deepEqual(of(file, plan), of(file, launched), `${name} ${dtype}: ${file} modules planned = launched`);
    }
});

test('no module is planned twice under two keys: no two requests of a file differ only by a define at its default', () => {
  const models = [
    llama,
    gemmaConfig('gemma-2-9b'),
    poolingModel('bert-base'),
    { ...llama, quantTypes: ['q4_k' as const] },
    { ...llama, kvQuant: 'fp8' as const },
  ];
  for (const m of models)
    for (const dtype of ['bf16', 'f32'] as const) {
      const plan = kernelPlan({ dtype, device: h100, gemvTable: table, gemv: true }, m);
      const builds = plan.map((r) => {
        const defaults = sourceDefaults(r.file);
        const given = Object.entries(r.defines).filter(([k, v]) => defaults.get(k) !== String(v));
        return key({ file: r.file, defines: Object.fromEntries(given) });
      });
      const twice = builds.filter((b, i) => builds.indexOf(b) !== i);
      assert.deepEqual(twice, [], `${dtype}: the same build under two keys`);
    }
});

test('the LayerNorm decoders and the plain MLPs: their norm, RoPE and MLP as their forward runs them', () => {
  const shapeOf = (name: string) => {
    const plan = decoderPlan(fixtureModel(name), 4);
    return [plan.norm, plan.rope, plan.act, plan.linears.some((l) => l.gated)];
  };
  // StarCoder2, Phi-2 (GELU) and Nemotron (ReLU²): LayerNorm, RoPE, a plain MLP.
  assert.deepEqual(shapeOf('tiny-starcoder2'), ['layer', true, null, false]);
  assert.deepEqual(shapeOf('tiny-phi'), ['layer', true, null, false]);
  // Command-R: LayerNorm and a gated SiLU MLP; OLMo 2: the Llama stack's norm and MLP.
  assert.deepEqual(shapeOf('tiny-cohere'), ['layer', true, 'silu', true]);
  assert.deepEqual(shapeOf('tiny-olmo2'), ['rms', true, 'silu', true]);
  assert.deepEqual(shapeOf('tiny-llama'), ['rms', true, 'silu', true]);
});

test("Granite 4.0's dense models (GraniteMoeHybrid with no experts): no router nor MoE modules, the MLP at its width", () => {
  const raw = JSON.parse(readFileSync(new URL('../fixtures/models/tiny-granite/config.json', import.meta.url), 'utf8'));
  const dense = parseModelConfig(
    {
      ...raw,
      architectures: ['GraniteMoeHybridForCausalLM'],
      model_type: 'granitemoehybrid',
      layer_types: Array(raw.num_hidden_layers).fill('attention'),
      num_local_experts: 0,
      shared_intermediate_size: 96,
    },
    'config.json',
  );
  const plan = decoderPlan(dense, 4);
  assert.equal(plan.moe, undefined);
  // Its MLP at the shared MLP's width (granite.ts builds it so), gate and up packed.
  assert.ok(plan.linears.some((l) => l.m === 96 && l.gated));
  assert.ok(
    plan.linears.every((l) => l.m > 0),
    `linears ${JSON.stringify(plan.linears.map((l) => l.m))}`,
  );
});
