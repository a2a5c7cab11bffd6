import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { threadedLoraMerge } from '../../src/backend/cpu/threads.ts';
import { mergeLora, readLoraAdapter, withLora } from '../../src/loader/lora-adapter.ts';
import { openSafetensors } from '../../src/loader/safetensors.ts';
import { loadModel } from '../../src/models/load.ts';
import { bf16Bits } from '../../src/primitives/float-bits.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { fixture } from '../helpers/fp8-fixtures.ts';
import { teacherForced } from '../helpers/paged-session.ts';

const BASE = fixture('tiny-llama');
const ADAPTER = fixture('tiny-llama-lora');
const MERGED = fixture('tiny-llama-lora-merged');

test('an adapter merged as weights load: every weight bit for bit what numpy merged, the rest untouched', () => {
  const merged = withLora(openSafetensors(BASE), readLoraAdapter(ADAPTER));
  const reference = openSafetensors(MERGED);
  const base = openSafetensors(BASE);
  try {
    let adapted = 0;
    for (const name of reference.names()) {
      const got = merged.get(name).bytes;
      assert.ok(Buffer.from(got).equals(Buffer.from(reference.get(name).bytes)), name);
      if (!Buffer.from(got).equals(Buffer.from(base.get(name).bytes))) adapted++;
    }
    assert.equal(adapted, 3 * 7, 'every linear of the three layers changed');
  } finally {
    merged.close();
    reference.close();
    base.close();
  }
});

test('a model loaded with --lora gives the logits of the merged model, not the base', () => {
  const prompt = [1, 312, 45, 907, 18];
  const forced = [77, 501, 3];
  const lines: string[] = [];
  const cpu = () => new CpuBackend({ threads: 1 });
  const adapted = teacherForced(loadModel(BASE, cpu(), { lora: ADAPTER, log: (l) => lines.push(l) }), prompt, forced);
  const reference = teacherForced(loadModel(MERGED, cpu()), prompt, forced);
  const base = teacherForced(loadModel(BASE, cpu()), prompt, forced);
  assert.deepEqual(lines, [`LoRA adapter ${ADAPTER}: merged into 21 weights as they load`]);
  for (let i = 0; i < adapted.length; i++) assert.deepEqual(adapted[i], reference[i], `step ${i}`);
  assert.notDeepEqual(adapted[0], base[0]);
});

test('into 16-bit weights: summed in float64, rounded to float32, then to the weight dtype', () => {
  const adapter = readLoraAdapter(ADAPTER);
  const name = 'model.layers.1.mlp.down_proj.weight';
  const source = openSafetensors(BASE);
  const f32 = toFloat32(source.get(name));
  // The base as bfloat16: a source whose tensor is the float32 one rounded.
  const bf16 = Uint16Array.from(f32, bf16Bits);
  const asBf16 = {
    names: () => source.names(),
    has: (n: string) => source.has(n),
    get: (n: string) =>
      n === name
        ? { name, shape: source.get(n).shape, dtype: 'bf16' as const, bytes: new Uint8Array(bf16.buffer) }
        : source.get(n),
    close: () => source.close(),
  };
  const got = withLora(asBf16, adapter).get(name);
  assert.equal(got.dtype, 'bf16');
  const { a, b, scale } = adapter.pairs.get(name)!;
  const [fa, fb] = [toFloat32(a), toFloat32(b)];
  const [rows, cols] = got.shape as [number, number];
  const halves = new Uint16Array(got.bytes.buffer, got.bytes.byteOffset, rows * cols);
  for (const [o, i] of [
    [0, 0],
    [rows - 1, cols - 1],
    [17, 101],
  ] as const) {
    let d = 0;
    for (let k = 0; k < 4; k++) d += fb[o * 4 + k]! * fa[k * cols + i]!;
    const base = toFloat32({
      name,
      shape: [1],
      dtype: 'bf16',
      bytes: new Uint8Array(Uint16Array.of(bf16[o * cols + i]!).buffer),
    })[0]!;
    assert.equal(halves[o * cols + i], bf16Bits(Math.fround(base + scale * d)), `[${o}, ${i}]`);
  }
  source.close();
});

const scratch = mkdtempSync(join(tmpdir(), 'pagoda-lora-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let copies = 0;

/** A copy of the adapter with its config changed by `edit`. */
function adapterWith(edit: (config: Record<string, unknown>) => void): string {
  const dir = join(scratch, `adapter-${copies++}`);
  cpSync(ADAPTER, dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
  edit(config);
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(config));
  return dir;
}

test('what cannot be merged is refused in one line naming the file and the field', () => {
  const cases: [string, RegExp][] = [
    [adapterWith((c) => Object.assign(c, { use_dora: true })), /adapter_config\.json: use_dora: DoRA adapters/],
    [adapterWith((c) => Object.assign(c, { bias: 'all' })), /adapter_config\.json: bias is "all"; only "none"/],
    [adapterWith((c) => Object.assign(c, { fan_in_fan_out: true })), /adapter_config\.json: fan_in_fan_out/],
    [adapterWith((c) => Object.assign(c, { peft_type: 'IA3' })), /adapter_config\.json: peft_type is "IA3"/],
    [adapterWith((c) => Object.assign(c, { alpha_pattern: { q_proj: 8 } })), /alpha_pattern/],
    [scratch, /not a LoRA adapter folder \(no adapter_config\.json\)$/],
  ];
  for (const [dir, pattern] of cases) assert.throws(() => readLoraAdapter(dir), pattern);
  // Another model's adapter: its weights are not this model's, or not of its shapes.
  assert.throws(
    () => withLora(openSafetensors(fixture('tiny-gpt2')), readLoraAdapter(ADAPTER)),
    /adapter_model\.safetensors: the adapter adapts model\.layers\.0\.mlp\.down_proj\.weight, which the model does not have$/,
  );
  assert.throws(
    () => withLora(openSafetensors(fixture('tiny-qwen3')), readLoraAdapter(ADAPTER)),
    /adapter_model\.safetensors: model\.layers\.0\.self_attn\.k_proj\.weight is \[64, 64\] in the model, but the adapter's factors make \[32, 64\]$/,
  );
});

test('a weight whose rows are not a multiple of four merges its last rows too', () => {
  const f32 = (name: string, shape: number[], values: number[]) => ({
    name,
    shape,
    dtype: 'f32' as const,
    bytes: new Uint8Array(Float32Array.from(values).buffer),
  });
  const [rows, cols, rank] = [5, 3, 2];
  const w = f32(
    'w.weight',
    [rows, cols],
    Array.from({ length: rows * cols }, (_, i) => i / 7),
  );
  const a = f32('a', [rank, cols], [0.5, -1, 2, 0.25, 3, -0.5]);
  const b = f32('b', [rows, rank], [1, 2, -1, 0.5, 3, 1, 0, -2, 0.125, 4]);
  const source = { names: () => ['w.weight'], has: (n: string) => n === 'w.weight', get: () => w, close() {} };
  const adapter = { dir: 'x', pairs: new Map([['w.weight', { a, b, scale: 1.5 }]]), close() {} };
  const got = new Float32Array(withLora(source, adapter).get('w.weight').bytes.slice().buffer);
  const [fw, fa, fb] = [toFloat32(w), toFloat32(a), toFloat32(b)];
  for (let o = 0; o < rows; o++) {
    for (let i = 0; i < cols; i++) {
      let d = 0;
      for (let k = 0; k < rank; k++) d += fb[o * rank + k]! * fa[k * cols + i]!;
      assert.equal(got[o * cols + i], Math.fround(fw[o * cols + i]! + 1.5 * d), `[${o}, ${i}]`);
    }
  }
});

test('a merge large enough for the worker threads: the same bits as on one thread, every row merged', () => {
  // 130 x 512 x 8 multiply-adds passes the threads' threshold; 130 rows end in a chunk the threads split unevenly.
  const [rows, cols, rank] = [130, 512, 8];
  const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed));
  const tensor = (shape: number[], v: Float32Array, dtype: 'f32' | 'bf16') => ({
    name: 't',
    shape,
    dtype,
    bytes: dtype === 'f32' ? new Uint8Array(v.buffer) : new Uint8Array(Uint16Array.from(v, bf16Bits).buffer),
  });
  const pair = {
    a: tensor([rank, cols], values(rank * cols, 1), 'f32'),
    b: tensor([rows, rank], values(rows * rank, 2), 'f32'),
    scale: 0.75,
  };
  for (const dtype of ['f32', 'bf16'] as const) {
    const base = tensor([rows, cols], values(rows * cols, 3), dtype);
    const threaded = mergeLora(base, pair, threadedLoraMerge(2));
    assert.deepEqual(threaded, mergeLora(base, pair), dtype);
    if (dtype === 'f32') {
      const got = new Float32Array(threaded.slice().buffer);
      const [fw, fa, fb] = [toFloat32(base), toFloat32(pair.a), toFloat32(pair.b)];
      for (const o of [0, 64, 127, 128, 129]) {
        let d = 0;
        for (let k = 0; k < rank; k++) d += fb[o * rank + k]! * fa[k * cols + 5]!;
        assert.equal(got[o * cols + 5], Math.fround(fw[o * cols + 5]! + 0.75 * d), `row ${o}`);
      }
    }
  }
});
