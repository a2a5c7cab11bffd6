import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ggufTensorName, hfTensorName } from '../../../src/loader/gguf/tensor-names.ts';
import { permuteRopeRows, transposeBytes } from '../../../src/loader/gguf/weights.ts';

const PAIRS: [string, string, string][] = [
  ['llama', 'token_embd.weight', 'model.embed_tokens.weight'],
  ['llama', 'output_norm.weight', 'model.norm.weight'],
  ['llama', 'output.weight', 'lm_head.weight'],
  ['llama', 'blk.3.attn_norm.weight', 'model.layers.3.input_layernorm.weight'],
  ['llama', 'blk.0.attn_q.weight', 'model.layers.0.self_attn.q_proj.weight'],
  ['llama', 'blk.0.attn_k.weight', 'model.layers.0.self_attn.k_proj.weight'],
  ['llama', 'blk.0.attn_v.weight', 'model.layers.0.self_attn.v_proj.weight'],
  ['llama', 'blk.12.attn_output.weight', 'model.layers.12.self_attn.o_proj.weight'],
  ['llama', 'blk.0.ffn_norm.weight', 'model.layers.0.post_attention_layernorm.weight'],
  ['llama', 'blk.0.ffn_gate.weight', 'model.layers.0.mlp.gate_proj.weight'],
  ['llama', 'blk.0.ffn_up.weight', 'model.layers.0.mlp.up_proj.weight'],
  ['llama', 'blk.0.ffn_down.weight', 'model.layers.0.mlp.down_proj.weight'],
  ['qwen2', 'blk.1.attn_q.bias', 'model.layers.1.self_attn.q_proj.bias'],
  ['qwen3', 'blk.1.attn_q_norm.weight', 'model.layers.1.self_attn.q_norm.weight'],
  ['qwen3', 'blk.1.attn_k_norm.weight', 'model.layers.1.self_attn.k_norm.weight'],
  ['gpt2', 'token_embd.weight', 'transformer.wte.weight'],
  ['gpt2', 'position_embd.weight', 'transformer.wpe.weight'],
  ['gpt2', 'blk.0.attn_qkv.weight', 'transformer.h.0.attn.c_attn.weight'],
  ['gpt2', 'blk.0.attn_norm.bias', 'transformer.h.0.ln_1.bias'],
  ['gpt2', 'blk.0.ffn_down.bias', 'transformer.h.0.mlp.c_proj.bias'],
  ['gpt2', 'output_norm.weight', 'transformer.ln_f.weight'],
  ['gemma2', 'blk.0.post_attention_norm.weight', 'model.layers.0.post_attention_layernorm.weight'],
  ['gemma2', 'blk.0.ffn_norm.weight', 'model.layers.0.pre_feedforward_layernorm.weight'],
  ['gemma2', 'blk.0.post_ffw_norm.weight', 'model.layers.0.post_feedforward_layernorm.weight'],
  ['phi3', 'blk.0.attn_qkv.weight', 'model.layers.0.self_attn.qkv_proj.weight'],
  ['phi3', 'blk.0.ffn_up.weight', 'model.layers.0.mlp.gate_up_proj.weight'],
  ['qwen2moe', 'blk.0.ffn_gate_inp.weight', 'model.layers.0.mlp.gate.weight'],
  ['qwen2moe', 'blk.0.ffn_up_shexp.weight', 'model.layers.0.mlp.shared_expert.up_proj.weight'],
  ['bert', 'token_types.weight', 'embeddings.token_type_embeddings.weight'],
  ['bert', 'blk.2.attn_output_norm.bias', 'encoder.layer.2.attention.output.LayerNorm.bias'],
  ['bert', 'blk.2.layer_output_norm.weight', 'encoder.layer.2.output.LayerNorm.weight'],
  ['bert', 'token_embd.weight', 'embeddings.word_embeddings.weight'],
  ['bert', 'position_embd.weight', 'embeddings.position_embeddings.weight'],
  ['bert', 'token_embd_norm.bias', 'embeddings.LayerNorm.bias'],
  ['bert', 'blk.0.attn_q.bias', 'encoder.layer.0.attention.self.query.bias'],
  ['bert', 'blk.0.attn_k.weight', 'encoder.layer.0.attention.self.key.weight'],
  ['bert', 'blk.0.attn_v.weight', 'encoder.layer.0.attention.self.value.weight'],
  ['bert', 'blk.1.attn_output.weight', 'encoder.layer.1.attention.output.dense.weight'],
  ['bert', 'blk.1.ffn_up.bias', 'encoder.layer.1.intermediate.dense.bias'],
  ['bert', 'blk.1.ffn_down.weight', 'encoder.layer.1.output.dense.weight'],
  ['bert', 'cls.weight', 'pooler.dense.weight'],
  ['bert', 'cls.output.bias', 'classifier.bias'],
  // NomicBertModel's checkpoint names; fc11 is the up projection, fc12 the gate (llama.cpp's tensor_mapping.py).
  ['nomic-bert', 'token_embd.weight', 'embeddings.word_embeddings.weight'],
  ['nomic-bert', 'token_types.weight', 'embeddings.token_type_embeddings.weight'],
  ['nomic-bert', 'token_embd_norm.bias', 'emb_ln.bias'],
  ['nomic-bert', 'blk.0.attn_qkv.weight', 'encoder.layers.0.attn.Wqkv.weight'],
  ['nomic-bert', 'blk.1.attn_output.weight', 'encoder.layers.1.attn.out_proj.weight'],
  ['nomic-bert', 'blk.1.attn_output_norm.weight', 'encoder.layers.1.norm1.weight'],
  ['nomic-bert', 'blk.2.ffn_up.weight', 'encoder.layers.2.mlp.fc11.weight'],
  ['nomic-bert', 'blk.2.ffn_gate.weight', 'encoder.layers.2.mlp.fc12.weight'],
  ['nomic-bert', 'blk.2.ffn_down.weight', 'encoder.layers.2.mlp.fc2.weight'],
  ['nomic-bert', 'blk.11.layer_output_norm.bias', 'encoder.layers.11.norm2.bias'],
];

test("llama.cpp's tensor names map to transformers' and back", () => {
  for (const [arch, gguf, hf] of PAIRS) {
    assert.equal(hfTensorName(arch, gguf)?.name, hf, `${arch} ${gguf}`);
    assert.equal(ggufTensorName(arch, hf), gguf, `${arch} ${hf}`);
  }
});

test('the changes to undo: llama q/k rows, gemma norms, gpt2 transposes, stacked experts; RoPE factors are config', () => {
  assert.deepEqual(hfTensorName('llama', 'blk.0.attn_q.weight')?.change, { kind: 'rope-rows', heads: 'q' });
  assert.deepEqual(hfTensorName('llama', 'blk.0.attn_k.weight')?.change, { kind: 'rope-rows', heads: 'kv' });
  assert.equal(hfTensorName('qwen2', 'blk.0.attn_q.weight')?.change, null);
  assert.deepEqual(hfTensorName('gemma3', 'output_norm.weight')?.change, { kind: 'norm-plus-one' });
  assert.deepEqual(hfTensorName('gpt2', 'blk.0.ffn_up.weight')?.change, { kind: 'transposed' });
  assert.equal(hfTensorName('gpt2', 'blk.0.ffn_up.bias')?.change, null);
  assert.deepEqual(hfTensorName('qwen3moe', 'blk.4.ffn_down_exps.weight'), {
    name: 'model.layers.4.mlp.experts',
    change: { kind: 'experts', part: 'down_proj' },
  });
  assert.equal(hfTensorName('llama', 'rope_freqs.weight'), null);
  assert.equal(hfTensorName('gpt2', 'output.weight'), null);
});

test("permuteRopeRows interleaves each head's halves as llama.cpp's converter does, and undoes it", () => {
  // Two heads of 4 rows, one byte per row: HF order [a0 a1 | b0 b1] per head → GGUF [a0 b0 a1 b1].
  const hf = Uint8Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
  const gguf = permuteRopeRows(hf, 8, 2, true);
  assert.deepEqual([...gguf], [0, 2, 1, 3, 10, 12, 11, 13]);
  assert.deepEqual([...permuteRopeRows(gguf, 8, 2, false)], [...hf]);
  const wide = Uint8Array.from({ length: 64 * 3 }, (_, i) => i % 251);
  assert.deepEqual(permuteRopeRows(permuteRopeRows(wide, 16, 4, true), 16, 4, false), wide);
});

test('transposeBytes moves whole elements', () => {
  const m = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
  assert.deepEqual([...new Float32Array(transposeBytes(m, 2, 3).buffer)], [1, 4, 2, 5, 3, 6]);
});
