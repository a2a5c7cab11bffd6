import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ggufHeader, isGgufPath } from '../../../src/loader/gguf/files.ts';
import { type GgufValue, gguf } from '../../../src/loader/gguf/format.ts';
import { GgufWeightSource } from '../../../src/loader/gguf/weights.ts';
import { encodeGguf } from '../../../src/loader/gguf/write.ts';
import { loadGenerationConfig, loadModelConfig } from '../../../src/loader/hf-config.ts';
import { defaultInvFreq, ropeSpecFromConfig } from '../../../src/models/rope.ts';
import { toFloat32 } from '../../../src/primitives/host-tensor.ts';

const dir = mkdtempSync(join(tmpdir(), 'pagoda-gguf-files-'));
const f32 = (name: string, shape: number[], values: number[]) => ({
  name,
  shape,
  dtype: 'f32' as const,
  bytes: new Uint8Array(new Float32Array(values).buffer),
});

function llamaMeta(arch: string, extra: [string, GgufValue][] = []): Map<string, GgufValue> {
  return new Map<string, GgufValue>([
    ['general.architecture', gguf.str(arch)],
    [`${arch}.embedding_length`, gguf.u32(16)],
    [`${arch}.feed_forward_length`, gguf.u32(32)],
    [`${arch}.block_count`, gguf.u32(1)],
    [`${arch}.attention.head_count`, gguf.u32(2)],
    [`${arch}.attention.head_count_kv`, gguf.u32(1)],
    [`${arch}.context_length`, gguf.u32(64)],
    [`${arch}.vocab_size`, gguf.u32(4)],
    ['tokenizer.ggml.eos_token_id', gguf.u32(2)],
    ['tokenizer.ggml.eot_token_id', gguf.u32(3)],
    ...extra,
  ]);
}

test("a GGUF file is known by its magic bytes, whatever its name; rope_freqs divides each pair's frequency", () => {
  const factors = [1, 2, 4, 8];
  const path = join(dir, 'sha256-0123');
  writeFileSync(path, encodeGguf(llamaMeta('llama'), [f32('rope_freqs.weight', [4], factors)]));
  assert.equal(isGgufPath(path), true);
  writeFileSync(join(dir, 'fake.gguf'), 'not gguf at all');
  assert.equal(isGgufPath(join(dir, 'fake.gguf')), false);
  assert.equal(isGgufPath(dir), false);
  const cfg = loadModelConfig(path);
  assert.deepEqual(cfg.ropeFreqFactors, factors);
  assert.equal(cfg.tieWordEmbeddings, true);
  const plain = defaultInvFreq(cfg.ropeTheta, 8);
  assert.deepEqual([...ropeSpecFromConfig(cfg).invFreq], [...plain.map((f, i) => f / factors[i]!)]);
  assert.deepEqual(loadGenerationConfig(path, cfg).eosTokenIds, [2, 3]);
});

test('weights come back under transformers names: gemma norms lose the stored +1, experts are split per expert', () => {
  const path = join(dir, 'moe.gguf');
  const experts = Array.from({ length: 2 * 3 * 16 }, (_, i) => i);
  writeFileSync(
    path,
    encodeGguf(llamaMeta('qwen3moe', [['qwen3moe.expert_count', gguf.u32(2)]]), [
      f32('blk.0.ffn_up_exps.weight', [2, 3, 16], experts),
      f32('blk.0.ffn_gate_inp.weight', [2, 16], new Array(32).fill(0.5)),
    ]),
  );
  const moe = new GgufWeightSource(ggufHeader(path), 'qwen3moe', { numHeads: 2, numKvHeads: 1 });
  assert.deepEqual(moe.names().sort(), [
    'model.layers.0.mlp.experts.0.up_proj.weight',
    'model.layers.0.mlp.experts.1.up_proj.weight',
    'model.layers.0.mlp.gate.weight',
  ]);
  const second = moe.get('model.layers.0.mlp.experts.1.up_proj.weight');
  assert.deepEqual(second.shape, [3, 16]);
  assert.deepEqual([...toFloat32(second)], experts.slice(48));
  moe.close();
  const gemmaPath = join(dir, 'gemma.gguf');
  writeFileSync(gemmaPath, encodeGguf(llamaMeta('gemma2'), [f32('blk.0.attn_norm.weight', [4], [1, 1.5, 0, 2])]));
  const gemma = new GgufWeightSource(ggufHeader(gemmaPath), 'gemma2', { numHeads: 2, numKvHeads: 1 });
  assert.deepEqual([...toFloat32(gemma.get('model.layers.0.input_layernorm.weight'))], [0, 0.5, -1, 1]);
  gemma.close();
});
