import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { HostTensor, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { ACT_TYPE, type ActType, dequantizeActivations, quantizeActivations } from '../../src/backend/cpu/quant-act.ts';
import { CpuTensor } from '../../src/backend/cpu/tensor.ts';
import { loadModel } from '../../src/models/load.ts';
import { isQuantType } from '../../src/primitives/ggml-types.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { parseQuantization } from '../../src/primitives/quant/mix.ts';
import { prepareModel } from '../../src/runner/load.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { PagedSession } from '../helpers/paged-session.ts';

/** The CPU backend, noting the type each weight was handed over in. */
class RecordingCpu extends CpuBackend {
  readonly types = new Map<string, string>();
  override loadWeight(w: HostTensor, opts?: { transpose?: boolean }): Tensor {
    this.types.set(w.name, w.dtype);
    return super.loadWeight(w, opts);
  }
  override loadStacked(parts: readonly HostTensor[]): Tensor {
    for (const p of parts) this.types.set(p.name, p.dtype);
    return super.loadStacked(parts);
  }
}

const wide = modelFixture('tiny-llama-256');
const narrow = modelFixture('tiny-llama');

/**
 * The CPU backend taking every weight as float32 (quantized weights dequantized as they load), and rounding each
 * linear()'s input the way quantized weights take it: to the 8-bit activations of the stored type (quant-act.ts).
 */
class DequantizingCpu extends CpuBackend {
  private readonly activations = new WeakMap<Tensor, ActType>();
  override loadWeight(w: HostTensor, opts?: { transpose?: boolean }): Tensor {
    const t = super.loadWeight({ ...w, dtype: 'f32', bytes: new Uint8Array(toFloat32(w).buffer) }, opts);
    if (isQuantType(w.dtype)) this.activations.set(t, ACT_TYPE[w.dtype]);
    return t;
  }
  override loadStacked(parts: readonly HostTensor[]): Tensor {
    const rows = parts.reduce((a, p) => a + p.shape[0]!, 0);
    const values = Float32Array.from(parts.flatMap((p) => [...toFloat32(p)]));
    const t = super.loadWeight({
      name: 'stacked',
      shape: [rows, parts[0]!.shape[1]!],
      dtype: 'f32',
      bytes: new Uint8Array(values.buffer),
    });
    // Stacked parts share one activation type here (the mixes stack k-quants with k-quants).
    const first = parts[0]!.dtype;
    if (isQuantType(first)) this.activations.set(t, ACT_TYPE[first]);
    return t;
  }
  override linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    const type = this.activations.get(weight);
    if (!type) return super.linear(x, weight, bias);
    const [T, n] = x.shape as [number, number];
    const acts = quantizeActivations(type, (x as CpuTensor).data, T, n);
    return super.linear(new CpuTensor([T, n], dequantizeActivations(type, acts, T, n)), weight, bias);
  }
}

function lastLogits(dir: string, quantization?: string, backend = new CpuBackend({ threads: 1 })): Float32Array {
  const model = loadModel(dir, backend, {
    quantization: quantization ? parseQuantization(quantization, 'test') : undefined,
  });
  const ids = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')).prompts[0].input_ids as number[];
  return new PagedSession(model).step([{ seq: 0, tokens: ids }])[0]!;
}

function relError(a: Float32Array, b: Float32Array): number {
  let e = 0;
  let r = 0;
  for (let i = 0; i < a.length; i++) {
    e += (a[i]! - b[i]!) ** 2;
    r += b[i]! ** 2;
  }
  return Math.sqrt(e / r);
}

test('--quantization q4_k_m gives each matrix its mix type; norms stay float', { skip: wide.skip }, () => {
  const b = new RecordingCpu({ threads: 1 });
  loadModel(wide.path, b, { quantization: parseQuantization('Q4_K_M', 'test') });
  // Two layers: use_more_bits (integer eighths) holds for layer 1 only, so its attn_v and ffn_down take Q6_K, and
  // its q/k/v are stacked from parts of two types; layer 0's are one Q4_K matrix.
  assert.equal(
    b.types.get(['q', 'k', 'v'].map((p) => `model.layers.0.self_attn.${p}_proj.weight`).join(' + ')),
    'q4_k',
  );
  assert.equal(b.types.get('model.layers.0.mlp.down_proj.weight'), 'q4_k');
  assert.equal(b.types.get('model.layers.1.self_attn.k_proj.weight'), 'q4_k');
  assert.equal(b.types.get('model.layers.1.self_attn.v_proj.weight'), 'q6_k');
  assert.equal(b.types.get('model.layers.1.mlp.down_proj.weight'), 'q6_k');
  assert.equal(b.types.get('model.layers.0.mlp.gate_proj.weight + model.layers.0.mlp.up_proj.weight'), 'q4_k');
  assert.equal(b.types.get('model.embed_tokens.weight'), 'q4_k');
  assert.equal(b.types.get('lm_head.weight'), 'q6_k');
  assert.equal(b.types.get('model.norm.weight'), 'f32');
});

test('a model quantized at load computes what its dequantized weights compute on 8-bit activations; more bits land nearer float', {
  skip: wide.skip,
}, () => {
  const ref = lastLogits(wide.path);
  const errors: number[] = [];
  for (const q of ['q8_0', 'q6_k', 'q4_k_m', 'q2_k']) {
    const got = lastLogits(wide.path, q);
    const twin = lastLogits(wide.path, q, new DequantizingCpu({ threads: 1 }));
    assert.ok(relError(got, twin) < 1e-5, `${q}: ${relError(got, twin)} from its dequantized twin`);
    errors.push(relError(got, ref));
  }
  // The random-weight fixture amplifies weight noise (Q8_0's 0.5% per weight is a few % in the logits).
  assert.ok(errors[0]! < 0.1, `q8_0 ${errors[0]}`);
  assert.deepEqual(
    [...errors].sort((a, b) => a - b),
    errors,
    `errors by type ${errors}`,
  );
});

test('rows of 64 or 160 values (not a whole super-block) fall back to 32-value types', { skip: narrow.skip }, () => {
  const b = new RecordingCpu({ threads: 1 });
  loadModel(narrow.path, b, { quantization: parseQuantization('q4_k_m', 'test') });
  assert.equal(b.types.get('model.layers.0.self_attn.o_proj.weight'), 'q5_0');
  assert.equal(b.types.get('model.layers.1.mlp.down_proj.weight'), 'q5_0'); // Q4_K → Q5_0
  assert.equal(b.types.get('model.layers.2.mlp.down_proj.weight'), 'q8_0'); // the last layer's Q6_K → Q8_0
  assert.equal(b.types.get('lm_head.weight'), 'q8_0');
  const ref = lastLogits(narrow.path);
  assert.ok(relError(lastLogits(narrow.path, 'q8_0'), ref) < 0.1);
});

test('--load-format dummy --quantization on the CPU makes random blocks from config.json alone', {
  skip: wide.skip,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-dummy-quant-'));
  try {
    writeFileSync(join(dir, 'config.json'), readFileSync(join(wide.path, 'config.json')));
    const lines: string[] = [];
    const p = prepareModel(dir, {
      device: 'cpu',
      cpuThreads: 1,
      loadFormat: 'dummy',
      quantization: 'Q5_K_M',
      log: (l) => lines.push(l),
    });
    assert.ok(lines.includes('weights: quantized to Q5_K_M at load (random blocks)'), lines.join('\n'));
    const logits = new PagedSession(p.runner.model).step([{ seq: 0, tokens: [1, 2, 3] }])[0]!;
    assert.equal(logits.length, 1024);
    assert.ok(logits.every(Number.isFinite));
    assert.ok(new Set(logits).size > 1000, 'random blocks give every vocabulary row its own values');
    assert.throws(
      () => prepareModel(dir, { device: 'cpu', loadFormat: 'dummy', quantization: 'q7_k' }),
      /^UserError: --quantization q7_k: unknown quantization \(expected one of q8_0, /,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
