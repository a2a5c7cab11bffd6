import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { HostTensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadModelConfig } from '../../src/loader/hf-config.ts';
import { openSafetensors } from '../../src/loader/safetensors.ts';
import { loadModel } from '../../src/models/load.ts';
import { hfWeightRole, quantizeAtLoad } from '../../src/models/quantize-at-load.ts';
import { parseQuantization } from '../../src/primitives/quant/mix.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { relL2 } from '../helpers/gpu.ts';
import { PagedSession } from '../helpers/paged-session.ts';
import { writeTinyGptBigCodeFolder } from '../helpers/random-folders.ts';
import { RecordingCpu } from '../helpers/recording-cpu.ts';

/** Matrices left as stored: a mixture-of-experts layer's router (and Qwen2-MoE's shared expert's gate). */
const KEPT = /\.(mlp\.gate|block_sparse_moe\.gate|block_sparse_moe\.router\.layer|mlp\.shared_expert_gate)\.weight$/;

for (const name of ['tiny-llama', 'tiny-qwen3', 'tiny-gemma2', 'tiny-gemma3', 'tiny-phi3-longrope', 'tiny-qwen3-moe']) {
  const fixture = modelFixture(name);
  test(`${name}: --quantization q8_0 quantizes every dense matrix, and the model still computes`, {
    skip: fixture.skip,
  }, () => {
    const cfg = loadModelConfig(fixture.path);
    const source = openSafetensors(fixture.path);
    try {
      for (const t of source.names()) {
        const shape = source.describe(t).shape;
        if (shape.length !== 2) continue;
        const role = hfWeightRole(t, shape[1]!, cfg, cfg.tieWordEmbeddings && !source.has('lm_head.weight'));
        assert.equal(role === null, KEPT.test(t), `${t}: role ${role?.kind ?? 'none'}`);
      }
    } finally {
      source.close();
    }
    const logits = (quantization?: string) => {
      const model = loadModel(fixture.path, new CpuBackend({ threads: 1 }), {
        quantization: quantization ? parseQuantization(quantization, 'test') : undefined,
      });
      return new PagedSession(model).step([{ seq: 0, tokens: [1, 5, 9, 13, 17, 21] }])[0]!;
    };
    const error = relL2(logits('q8_0'), logits());
    // Q8_0 weights, with the CPU's 8-bit activations, move these random fixtures' logits by 2-10 % (relative L2;
    // tiny-phi3-longrope the most, 0.102), never not at all; a wrong block or scale moves them by their whole size.
    assert.ok(error > 1e-4 && error < 0.15, `logits moved by ${error}`);
  });
}

const gpt2 = modelFixture('tiny-gpt2');
test('GPT-2 refuses --quantization in one line rather than running unquantized', { skip: gpt2.skip }, () => {
  assert.throws(
    () => loadModel(gpt2.path, new CpuBackend({ threads: 1 }), { quantization: parseQuantization('q8_0', 'test') }),
    /^UserError: --quantization q8_0: GPT-2's weights \(Conv1D, stored transposed\) are not quantized yet$/,
  );
});

test('GPTBigCode refuses --quantization in one line too (its matrices have no quantization roles yet)', {
  skip: gpt2.skip,
}, () => {
  const dir = writeTinyGptBigCodeFolder(join(mkdtempSync(join(tmpdir(), 'pagoda-bigcode-')), 'm'), gpt2.path);
  assert.throws(
    () => loadModel(dir, new CpuBackend({ threads: 1 }), { quantization: parseQuantization('q4_k_m', 'test') }),
    /^UserError: --quantization q4_k_m: GPTBigCode's weights are not quantized yet$/,
  );
});

for (const name of ['tiny-qwen3-moe', 'tiny-mixtral', 'tiny-qwen2-moe', 'tiny-granitemoe']) {
  const fixture = modelFixture(name);
  test(`${name}: --quantization q8_0 on the CPU keeps every layer's experts in blocks, and the model still computes`, {
    skip: fixture.skip,
  }, () => {
    const cfg = loadModelConfig(fixture.path);
    const experts = Number(cfg.raw.num_experts ?? cfg.raw.num_local_experts);
    const I = Number(cfg.raw.moe_intermediate_size ?? cfg.raw.intermediate_size);
    const sparse = cfg.numLayers - ((cfg.raw.mlp_only_layers as number[] | undefined)?.length ?? 0);
    const backend = new RecordingCpu({ threads: 1 });
    const model = loadModel(fixture.path, backend, { quantization: parseQuantization('q8_0', 'test') });
    const stacksOf = (rows: number) => backend.quantized.filter((w) => w.shape[0] === rows).length;
    // Per sparse layer a gate/up stack of E x 2I rows, and a down stack of E x H rows where I fits Q8_0's blocks.
    assert.equal(stacksOf(experts * 2 * I), sparse, `${name}: gate/up stacks in blocks`);
    assert.equal(stacksOf(experts * cfg.hiddenSize), I % 32 === 0 ? sparse : 0, `${name}: down stacks in blocks`);
    const quantized = new PagedSession(model).step([{ seq: 0, tokens: [1, 5, 9, 13, 17, 21] }])[0]!;
    const float = new PagedSession(loadModel(fixture.path, new CpuBackend({ threads: 1 }))).step([
      { seq: 0, tokens: [1, 5, 9, 13, 17, 21] },
    ])[0]!;
    const error = relL2(quantized, float);
    assert.ok(error > 1e-4 && error < 0.1, `logits moved by ${error}`);
  });
}

test('--quantization gives experts, routed (per expert or stacked) and shared, their blocks on both backends; routers and 3-D non-experts stay', {
  skip: modelFixture('tiny-qwen2-moe').skip,
}, () => {
  const cfg = loadModelConfig(modelFixture('tiny-qwen2-moe').path);
  const matrix = (name: string, shape: number[]): HostTensor => ({
    name,
    shape,
    dtype: 'f32',
    bytes: new Uint8Array(4 * shape.reduce((a, d) => a * d, 1)),
  });
  const scheme = parseQuantization('q8_0', 'test');
  const routed = [
    matrix('model.layers.0.mlp.experts.3.down_proj.weight', [64, 32]),
    matrix('model.layers.0.mlp.experts.gate_up_proj', [8, 96, 64]),
    matrix('model.layers.2.block_sparse_moe.experts.1.w2.weight', [64, 160]),
  ];
  const shared = matrix('model.layers.0.mlp.shared_expert.up_proj.weight', [96, 64]);
  const router = matrix('model.layers.0.mlp.gate.weight', [8, 64]);
  const notExperts = matrix('model.layers.0.self_attn.q_proj.weight', [2, 32, 64]);
  for (const backend of ['cpu', 'cuda'] as const) {
    const hook = quantizeAtLoad(scheme, cfg, true, backend);
    for (const t of [...routed, shared]) assert.equal(hook(t).dtype, 'q8_0', `${backend} ${t.name}`);
    assert.equal(hook(router).dtype, 'f32', backend);
    assert.equal(hook(notExperts).dtype, 'f32', backend);
  }
  // A dummy stack (no bytes) for CUDA keeps no bytes: the device makes its blocks.
  const dummy = { ...routed[1]!, bytes: new Uint8Array(0) };
  assert.equal(quantizeAtLoad(scheme, cfg, true, 'cuda')(dummy).bytes.byteLength, 0);
});
