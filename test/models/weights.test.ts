import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Backend, DType, HostTensor, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import type { WeightSource } from '../../src/loader/safetensors.ts';
import { loadDummyModel } from '../../src/models/dummy.ts';
import { ModelWeights } from '../../src/models/weights.ts';
import { encodeAs } from '../../src/primitives/float-bits.ts';
import { UserError } from '../../src/util/errors.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { modelFixture } from '../helpers/fixtures.ts';

/** Stored tensors in memory, as a safetensors file would hand them out. */
function memorySource(tensors: HostTensor[]): WeightSource {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  return {
    names: () => [...byName.keys()],
    has: (name) => byName.has(name),
    get: (name) => byName.get(name)!,
    close: () => {},
  };
}

/** A stored tensor of random values that are exact in `dtype`, and those values. */
function stored(name: string, shape: number[], dtype: DType, seed: number): { host: HostTensor; values: number[] } {
  const r = mulberry32(seed);
  // Multiples of 1/64 below 4 are exact in f16, bf16 and f32.
  const values = Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => Math.round((r() * 8 - 4) * 64) / 64);
  return { host: { name, shape, dtype, bytes: encodeAs(Float32Array.from(values), dtype) }, values };
}

describe('ModelWeights.loadPacked', () => {
  const cpu = new CpuBackend({ threads: 1 });
  const parts = [
    { name: 'q.weight', shape: [8, 6] },
    { name: 'k.weight', shape: [2, 6] },
    { name: 'v.weight', shape: [2, 6] },
  ];

  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    test(`concatenates ${dtype} parts along dim 0`, () => {
      const s = parts.map((p, i) => stored(p.name, p.shape, dtype, 10 + i));
      const w = new ModelWeights(memorySource(s.map((x) => x.host)), cpu, 'model-dir');
      const packed = w.loadPacked(parts);
      assert.deepEqual(packed.shape, [12, 6]);
      assert.deepEqual(
        [...cpu.toHost(packed)],
        s.flatMap((x) => x.values),
      );
    });
  }

  test('a part with the wrong shape is named with its expected shape', () => {
    const s = [stored('q.weight', [8, 6], 'bf16', 1), stored('k.weight', [3, 6], 'bf16', 2)];
    const w = new ModelWeights(memorySource(s.map((x) => x.host)), cpu, 'model-dir');
    assert.throws(
      () => w.loadPacked(parts.slice(0, 2)),
      (e: unknown) =>
        e instanceof UserError && /tensor k\.weight has shape \[3, 6\], expected \[2, 6\]/.test(e.message),
    );
  });

  test('parts stored in different dtypes are refused, naming both', () => {
    const s = [stored('q.weight', [8, 6], 'bf16', 1), stored('k.weight', [2, 6], 'f32', 2)];
    const w = new ModelWeights(memorySource(s.map((x) => x.host)), cpu, 'model-dir');
    assert.throws(
      () => w.loadPacked(parts.slice(0, 2)),
      (e: unknown) =>
        e instanceof UserError &&
        /model-dir: tensors q\.weight \(bf16\) and k\.weight \(f32\) are packed into one weight and must share a dtype/.test(
          e.message,
        ),
    );
  });
});

const llama = modelFixture('tiny-llama');

test('dummy weights come in the packed shapes', { skip: llama.skip }, () => {
  const loaded: HostTensor[] = [];
  const recording = new Proxy({} as Backend, {
    get: (_, key) => {
      if (key === 'loadWeight')
        return (w: HostTensor): Tensor => {
          loaded.push(w);
          return { shape: w.shape, dtype: w.dtype as Tensor['dtype'] };
        };
      if (key === 'name') return 'cpu';
      // A stand-in for one rank: the model's weights whole.
      if (key === 'tensorParallelSize') return 1;
      return () => assert.fail(`${String(key)} called while building the model`);
    },
  });
  const model = loadDummyModel(llama.path, recording);
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim: D } = model.config;
  const byName = new Map(loaded.map((w) => [w.name, w]));
  const qkv = byName.get(
    'model.layers.0.self_attn.q_proj.weight + model.layers.0.self_attn.k_proj.weight + model.layers.0.self_attn.v_proj.weight',
  );
  assert.deepEqual(qkv?.shape, [(numHeads + 2 * numKvHeads) * D, H]);
  assert.equal(qkv?.bytes.byteLength, 0, 'dummy weights carry no bytes');
  const gateUp = byName.get('model.layers.0.mlp.gate_proj.weight + model.layers.0.mlp.up_proj.weight');
  assert.deepEqual(gateUp?.shape, [2 * I, H]);
});
