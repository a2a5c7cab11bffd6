import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostTensor, Tensor, WeightLoadOptions } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { CpuTensor } from '../../src/backend/cpu/tensor.ts';
import { openCheckpoint } from '../../src/loader/fp8-weights.ts';
import { loadModelConfig } from '../../src/loader/hf-config.ts';
import type { WeightSource } from '../../src/loader/safetensors.ts';
import { loadDummyModel } from '../../src/models/dummy.ts';
import { loadModel } from '../../src/models/load.ts';
import { fp8AtLoad } from '../../src/models/quantize-at-load.ts';
import { ModelWeights } from '../../src/models/weights.ts';
import { encodeAs } from '../../src/primitives/float-bits.ts';
import { dequantizeFp8Rows, quantizeFp8Rows } from '../../src/primitives/fp8.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { FP8_QUANTIZATION } from '../../src/primitives/quant/mix.ts';
import { Fp8Cpu } from '../helpers/fp8-cpu.ts';
import { FP8_FORCED, FP8_PROMPT, FP8_VARIANTS, fixture } from '../helpers/fp8-fixtures.ts';
import { relL2 } from '../helpers/gpu.ts';
import { teacherForced } from '../helpers/paged-session.ts';

const LLAMA = fixture('tiny-llama');

test('--quantization fp8 asks for the decoder layers q/k/v, o, gate/up and down; embeddings, norms, LM head stay', () => {
  const b = new Fp8Cpu();
  loadModel(LLAMA, b, { quantization: FP8_QUANTIZATION });
  const layers = loadModelConfig(LLAMA).numLayers;
  assert.equal(b.fp8.length, 4 * layers, b.fp8.join('\n'));
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    for (const want of [
      `${p}.self_attn.q_proj.weight + ${p}.self_attn.k_proj.weight + ${p}.self_attn.v_proj.weight`,
      `${p}.self_attn.o_proj.weight`,
      `${p}.mlp.gate_proj.weight + ${p}.mlp.up_proj.weight`,
      `${p}.mlp.down_proj.weight`,
    ])
      assert.ok(b.fp8.includes(want), `${want} is FP8`);
  }
  for (const name of ['model.embed_tokens.weight', 'model.norm.weight', 'model.layers.0.input_layernorm.weight']) {
    assert.ok(b.plain.includes(name), `${name} stays as stored`);
  }
  assert.ok(!b.fp8.some((n) => /embed|lm_head|norm/.test(n)));
});

test('dummy weights with fp8 ask the backend for the same matrices (it makes them)', () => {
  const b = new Fp8Cpu();
  loadDummyModel(LLAMA, b, { quantization: FP8_QUANTIZATION });
  const real = new Fp8Cpu();
  loadModel(LLAMA, real, { quantization: FP8_QUANTIZATION });
  assert.deepEqual(b.fp8, real.fp8);
});

test('FP8 weights (the CPU twin) keep the fixture close to its float32 logits', () => {
  const f32 = teacherForced(loadModel(LLAMA, new CpuBackend({ threads: 1 })), FP8_PROMPT, FP8_FORCED);
  const fp8 = teacherForced(loadModel(LLAMA, new Fp8Cpu(), { quantization: FP8_QUANTIZATION }), FP8_PROMPT, FP8_FORCED);
  for (let i = 0; i < f32.length; i++) {
    const e = relL2(fp8[i]!, f32[i]!);
    // e4m3 keeps 3 mantissa bits (each weight and each activation within 2^-4 relative); on this random fixture
    // the logits move by 13-30 % (relative L2 measured), a trained model far less (bench/fp8-weights-quality.ts).
    assert.ok(e > 0 && e < 0.4, `step ${i}: relative L2 ${e}`);
  }
});

test('ModelWeights refuses FP8 weights for a backend without them, and GPT-2 is refused in one line', () => {
  const source: WeightSource = { names: () => [], has: () => false, get: () => assert.fail(), close: () => {} };
  assert.throws(
    () => new ModelWeights(source, new CpuBackend({ threads: 1 }), 'dir', undefined, () => true),
    /^Error: dir: FP8 weights asked of the cpu backend, which has none$/,
  );
  const gpt2 = loadModelConfig(fixture('tiny-gpt2'));
  assert.throws(
    () => fp8AtLoad(gpt2),
    /^UserError: --quantization fp8: GPT-2's weights \(Conv1D, stored transposed\) are not quantized yet$/,
  );
});

test('fp8AtLoad takes float matrices of the decoder layers only', () => {
  const cfg = loadModelConfig(LLAMA);
  const is = fp8AtLoad(cfg);
  const t = (name: string, shape: number[], dtype: HostTensor['dtype'] = 'bf16'): HostTensor => ({
    name,
    shape,
    dtype,
    bytes: new Uint8Array(0),
  });
  assert.equal(is(t('model.layers.3.self_attn.q_proj.weight', [64, 64])), true);
  assert.equal(is(t('model.layers.0.mlp.gate_up_proj.weight', [64, 64])), true, "Phi-3's packed gate/up");
  assert.equal(is(t('model.layers.0.self_attn.q_proj.bias', [64])), false);
  assert.equal(is(t('model.layers.0.mlp.experts.0.up_proj.weight', [64, 64])), false, 'MoE experts stay');
  assert.equal(is(t('model.layers.0.mlp.shared_expert.up_proj.weight', [64, 64])), false);
  assert.equal(is(t('lm_head.weight', [64, 64])), false);
  assert.equal(is(t('model.embed_tokens.weight', [64, 64])), false);
  assert.equal(is(t('model.layers.0.self_attn.o_proj.weight', [64, 64], 'q8_0')), false, 'already quantized');
  assert.equal(is(t('model.layers.0.self_attn.o_proj.weight', [64, 64], 'f8_e4m3')), false, 'already FP8');
});

/** Stored tensors in memory, as a safetensors file would hand them out. */
function memorySource(tensors: HostTensor[]): WeightSource {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  return { names: () => [...byName.keys()], has: (n) => byName.has(n), get: (n) => byName.get(n)!, close: () => {} };
}

test('packed f8_e4m3 parts keep their codes and row scales in order; packed with a float part they are decoded', () => {
  const part = (name: string, rows: number, seed: number): HostTensor => {
    const values = Float32Array.from({ length: rows * 16 }, (_, i) => Math.sin(seed * 100 + i));
    const q = quantizeFp8Rows(values, rows, 16);
    return { name, shape: [rows, 16], dtype: 'f8_e4m3', bytes: q.codes, rowScales: q.scales };
  };
  const q = part('q', 32, 1);
  const k = part('k', 16, 2);
  const b = new Fp8Cpu();
  new ModelWeights(memorySource([q, k]), b, 'dir').loadPacked([
    { name: 'q', shape: [32, 16] },
    { name: 'k', shape: [16, 16] },
  ]);
  assert.deepEqual(b.fp8, ['q + k']);
  const v = {
    name: 'v',
    shape: [16, 16],
    dtype: 'bf16' as const,
    bytes: encodeAs(new Float32Array(256).fill(0.5), 'bf16'),
  };
  class Seen extends CpuBackend {
    seen: HostTensor | undefined;
    override loadWeight(w: HostTensor, opts?: WeightLoadOptions): Tensor {
      this.seen = w;
      return super.loadWeight(w, opts);
    }
  }
  const seen = new Seen({ threads: 1 });
  new ModelWeights(memorySource([q, v]), seen, 'dir').loadPacked([
    { name: 'q', shape: [32, 16] },
    { name: 'v', shape: [16, 16] },
  ]);
  assert.equal(seen.seen!.dtype, 'bf16');
  const want = [...dequantizeFp8Rows({ codes: q.bytes, scales: q.rowScales! }, 16), ...new Float32Array(256).fill(0.5)];
  assert.deepEqual(
    [...toFloat32(seen.seen!)],
    [...toFloat32({ ...v, shape: [48, 16], bytes: encodeAs(Float32Array.from(want), 'bf16') })],
  );
});

for (const { variant, summary } of FP8_VARIANTS) {
  test(`FP8 checkpoint (${variant}) for a backend with FP8 weights: ${variant === 'block' ? 'dequantized' : 'kept as codes and row scales'}`, () => {
    const dir = fixture(`tiny-llama-fp8-${variant}`);
    const cfg = loadModelConfig(dir);
    const kept = openCheckpoint(dir, cfg, 'bf16', true);
    const plain = openCheckpoint(dir, cfg, 'f32', false);
    try {
      const name = 'model.layers.1.mlp.down_proj.weight';
      const got = kept.weights.get(name);
      if (variant === 'block') {
        assert.equal(got.dtype, 'bf16');
        assert.equal(
          kept.note,
          `weights: ${summary} dequantized to bfloat16 at load (FP8 GEMMs take one scale per output row, not blocks)`,
        );
        return;
      }
      assert.equal(kept.note, `weights: ${summary} kept as FP8 (e4m3, a scale per output row; other tensors bfloat16)`);
      assert.equal(got.dtype, 'f8_e4m3');
      assert.equal(got.rowScales!.length, got.shape[0]);
      assert.equal(kept.weights.describe(name).dtype, 'f8_e4m3');
      assert.deepEqual(toFloat32(got), toFloat32(plain.weights.get(name)), 'the same values as dequantized at load');
      assert.equal(kept.weights.get('model.norm.weight').dtype, 'bf16', 'unquantized tensors pass as stored');
    } finally {
      kept.weights.close();
      plain.weights.close();
    }
  });
}

/** The float32 CPU backend with the decoder matrices' inputs quantized per token to e4m3, as FP8 linears take them. */
class Fp8ActivationsCpu extends CpuBackend {
  private readonly decoder = new WeakSet<Tensor>();
  override loadWeight(w: HostTensor, opts?: WeightLoadOptions): Tensor {
    const t = super.loadWeight(w, opts);
    if (/\.layers\.\d+\./.test(w.name) && w.shape.length === 2) this.decoder.add(t);
    return t;
  }
  override linear(x: Tensor, w: Tensor, bias?: Tensor): Tensor {
    if (!this.decoder.has(w)) return super.linear(x, w, bias);
    const cols = x.shape.at(-1)!;
    const data = (x as CpuTensor).data;
    const xq = dequantizeFp8Rows(quantizeFp8Rows(data, data.length / cols, cols), cols);
    return super.linear(new CpuTensor(x.shape, xq), w, bias);
  }
}

test('an FP8 checkpoint on a backend with FP8 weights computes what its dequantized weights do with FP8 activations', () => {
  const dir = fixture('tiny-llama-fp8-channel');
  const b = new Fp8Cpu();
  const fp8 = teacherForced(loadModel(dir, b), FP8_PROMPT, FP8_FORCED);
  assert.ok(b.fp8.length > 0, 'its matrices came as f8_e4m3');
  const reference = teacherForced(
    loadModel(`${dir}-dequantized`, new Fp8ActivationsCpu({ threads: 1 })),
    FP8_PROMPT,
    FP8_FORCED,
  );
  // Exact code products against float32 ones: 1e-7 measured; FP8 activations alone move these logits by 2-8 %.
  for (let i = 0; i < fp8.length; i++) {
    const e = relL2(fp8[i]!, reference[i]!);
    assert.ok(e < 1e-5, `step ${i}: relative L2 ${e}`);
  }
});
