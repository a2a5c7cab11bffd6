import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { dequantizeFp8, openCheckpoint } from '../../src/loader/fp8-weights.ts';
import { loadModelConfig } from '../../src/loader/hf-config.ts';
import { openSafetensors } from '../../src/loader/safetensors.ts';
import { loadModel } from '../../src/models/load.ts';
import { bf16Bits } from '../../src/primitives/float-bits.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { FP8_FORCED, FP8_PROMPT, FP8_VARIANTS, fixture } from '../helpers/fp8-fixtures.ts';
import { teacherForced } from '../helpers/paged-session.ts';

/** Logits of a prompt, then of four teacher-forced decode steps. */
const steps = (dir: string, log?: (line: string) => void) =>
  teacherForced(loadModel(dir, new CpuBackend({ threads: 1 }), { log }), FP8_PROMPT, FP8_FORCED);

for (const { variant, summary } of FP8_VARIANTS) {
  test(`FP8 checkpoint (${variant}): logits exactly those of its weights dequantized by numpy`, () => {
    const lines: string[] = [];
    const fp8 = steps(fixture(`tiny-llama-fp8-${variant}`), (l) => lines.push(l));
    const reference = steps(fixture(`tiny-llama-fp8-${variant}-dequantized`));
    assert.deepEqual(lines, [`weights: ${summary} dequantized to float32 at load`]);
    for (let i = 0; i < fp8.length; i++) assert.deepEqual(fp8[i], reference[i], `step ${i}`);
    assert.notDeepEqual(fp8[0], fp8[1], 'the steps see different tokens');
  });
}

test('for a bfloat16 backend the FP8 weights are dequantized in float32, then rounded once to bfloat16', () => {
  const dir = fixture('tiny-llama-fp8-block');
  const { weights } = openCheckpoint(dir, loadModelConfig(dir), 'bf16');
  const reference = openSafetensors(`${dir}-dequantized`);
  try {
    for (const name of ['model.layers.0.self_attn.q_proj.weight', 'model.layers.1.self_attn.o_proj.weight']) {
      const got = weights.get(name);
      assert.equal(got.dtype, 'bf16');
      const want = Uint16Array.from(toFloat32(reference.get(name)), bf16Bits);
      assert.deepEqual(new Uint16Array(got.bytes.buffer, got.bytes.byteOffset, got.bytes.length / 2), want, name);
    }
    assert.equal(weights.get('model.norm.weight').dtype, 'bf16', 'unquantized tensors pass as stored');
  } finally {
    weights.close();
    reference.close();
  }
});

test('dequantizeFp8: each value takes the scale of its tile, partial tiles at the edges included', () => {
  // 0x38 is 1.0 and 0xc0 is -2.0 in e4m3; a [3, 5] weight in 2x2 tiles has 2x3 scales.
  const codes = new Uint8Array(15).fill(0x38);
  codes[14] = 0xc0;
  const scales = Float32Array.of(1, 2, 3, 4, 5, 6);
  const got = dequantizeFp8(codes, [3, 5], scales, [2, 2]);
  assert.deepEqual([...got], [1, 1, 2, 2, 3, 1, 1, 2, 2, 3, 4, 4, 5, 5, -12]);
});

const scratch = mkdtempSync(join(tmpdir(), 'pagoda-fp8-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let copies = 0;

/** A copy of a fixture, its config.json and safetensors header edited (tensor data left where it was). */
function brokenCopy(
  variant: string,
  edit: { config?: (c: Record<string, unknown>) => void; header?: (h: Record<string, unknown>) => void },
): string {
  const dir = join(scratch, `copy-${copies++}`);
  cpSync(fixture(`tiny-llama-fp8-${variant}`), dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  edit.config?.(config);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const file = readFileSync(join(dir, 'model.safetensors'));
  const length = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + length).toString());
  edit.header?.(header);
  const json = Buffer.from(JSON.stringify(header).padEnd(length));
  assert.equal(json.length, length, 'the edited header fits the old one');
  writeFileSync(join(dir, 'model.safetensors'), Buffer.concat([file.subarray(0, 8), json, file.subarray(8 + length)]));
  return dir;
}

const load = (dir: string) => () => loadModel(dir, new CpuBackend({ threads: 1 }));
const Q = 'model.layers.0.self_attn.q_proj';

test('a missing scale tensor is one line naming it, its weight and the shape expected', () => {
  const dir = brokenCopy('block', { header: (h) => delete h[`${Q}.weight_scale_inv`] });
  assert.throws(
    load(dir),
    new RegExp(
      `^UserError: ${dir}: tensor ${Q}\\.weight_scale_inv is missing \\(the scale of FP8 weight ${Q}\\.weight \\[256, 128\\], expected shape \\[2, 1\\] \\(block 128x128\\)\\)$`,
    ),
  );
});

test('a scale of the wrong shape, or a block size the shapes do not allow, is one line naming the tensor', () => {
  const channel = brokenCopy('channel', {
    header: (h) => {
      (h[`${Q}.weight_scale`] as { shape: number[] }).shape = [1, 256];
    },
  });
  assert.throws(
    load(channel),
    new RegExp(
      `^UserError: ${channel}: tensor ${Q}\\.weight_scale has shape \\[1, 256\\], expected \\[256, 1\\] \\(per-channel\\) for FP8 weight ${Q}\\.weight \\[256, 128\\]$`,
    ),
  );
  const blocks = brokenCopy('block', {
    config: (c) => {
      (c.quantization_config as Record<string, unknown>).weight_block_size = [64, 128];
    },
  });
  assert.throws(
    load(blocks),
    new RegExp(
      `^UserError: ${blocks}: tensor ${Q}\\.weight_scale_inv has shape \\[2, 1\\], expected \\[4, 1\\] \\(block 64x128\\)`,
    ),
  );
});

test('FP8 tensors without an FP8 quantization_config are one line naming the tensor', () => {
  const dir = brokenCopy('channel', { config: (c) => delete c.quantization_config });
  assert.throws(
    load(dir),
    /^UserError: .*model\.safetensors: tensor model\.layers\.0\.\w+\.\w+_proj\.weight is F8_E4M3, but config\.json has no FP8 quantization_config to give its scales$/,
  );
});

test('other quantization methods, and compressed-tensors schemes that are not FP8, are refused in one line', () => {
  const supported = '\\(pagoda reads fp8 and compressed-tensors FP8 checkpoints, and GGUF files\\)';
  for (const method of ['awq', 'gptq', 'bitsandbytes', 'gguf']) {
    const dir = brokenCopy('block', { config: (c) => (c.quantization_config = { quant_method: method, bits: 4 }) });
    assert.throws(
      load(dir),
      new RegExp(
        `^UserError: ${dir}/config\\.json: quantization_config\\.quant_method "${method}" is not supported ${supported}$`,
      ),
    );
  }
  const int4 = brokenCopy('channel', {
    config: (c) => {
      const q = c.quantization_config as { format: string; config_groups: { group_0: { weights: object } } };
      q.format = 'float-quantized';
      q.config_groups.group_0.weights = { num_bits: 4, type: 'int', strategy: 'group', group_size: 128 };
    },
  });
  assert.throws(
    load(int4),
    new RegExp(
      `^UserError: ${int4}/config\\.json: quantization_config\\.config_groups\\.group_0\\.weights is num_bits 4, type "int": only FP8 weights \\(num_bits 8, type "float"\\) are supported ${supported}$`,
    ),
  );
  const packed = brokenCopy('channel', {
    config: (c) => ((c.quantization_config as { format: string }).format = 'pack-quantized'),
  });
  assert.throws(load(packed), /quantization_config\.format "pack-quantized" is not supported/);
});

test('activation scales and FP8 KV cache scales are read without error and stay readable by name', () => {
  const dir = fixture('tiny-llama-fp8-tensor');
  const { weights } = openCheckpoint(dir, loadModelConfig(dir), 'f32');
  try {
    assert.deepEqual([...toFloat32(weights.get('model.layers.1.self_attn.k_scale'))], [Math.fround(0.03)]);
    assert.equal(weights.get(`${Q}.input_scale`).shape.length, 1);
  } finally {
    weights.close();
  }
});
