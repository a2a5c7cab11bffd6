import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hfConfigFromGguf } from '../../../src/loader/gguf/config.ts';
import type { GgufScalar } from '../../../src/loader/gguf/format.ts';
import { parseModelConfig } from '../../../src/loader/hf-config.ts';

/** A GGUF header's metadata and tensor names, as the config mapping sees them. */
function view(meta: Record<string, GgufScalar | GgufScalar[]>, tensors: string[] = ['output.weight']) {
  return { path: 'x.gguf', value: (k: string) => meta[k], hasTensor: (n: string) => tensors.includes(n) };
}

function common(arch: string, extra: Record<string, GgufScalar | GgufScalar[]> = {}) {
  return {
    'general.architecture': arch,
    [`${arch}.embedding_length`]: 256,
    [`${arch}.feed_forward_length`]: 768,
    [`${arch}.block_count`]: 6,
    [`${arch}.attention.head_count`]: 4,
    [`${arch}.attention.head_count_kv`]: 2,
    [`${arch}.context_length`]: 4096,
    [`${arch}.attention.layer_norm_rms_epsilon`]: 1e-6,
    [`${arch}.rope.freq_base`]: 500000,
    'tokenizer.ggml.tokens': ['a', 'b', 'c'],
    'tokenizer.ggml.bos_token_id': 1,
    'tokenizer.ggml.eos_token_id': 2,
    ...extra,
  };
}

test('llama metadata gives the ModelConfig a config.json would', () => {
  const c = parseModelConfig(hfConfigFromGguf(view(common('llama'))), 'x.gguf');
  assert.equal(c.architecture, 'LlamaForCausalLM');
  assert.equal(c.vocabSize, 3);
  assert.equal(c.hiddenSize, 256);
  assert.equal(c.intermediateSize, 768);
  assert.equal(c.numLayers, 6);
  assert.equal(c.numHeads, 4);
  assert.equal(c.numKvHeads, 2);
  assert.equal(c.headDim, 64);
  assert.equal(c.maxPositionEmbeddings, 4096);
  assert.equal(c.normEps, 1e-6);
  assert.equal(c.ropeTheta, 500000);
  assert.equal(c.ropeScaling, null);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.bosTokenId, 1);
  assert.deepEqual(c.eosTokenIds, [2]);
  assert.equal(c.hiddenAct, 'silu');
});

test('no output.weight means tied embeddings; qwen3 key_length is the head size', () => {
  const meta = common('qwen3', { 'qwen3.attention.key_length': 128, 'qwen3.vocab_size': 1000 });
  const c = parseModelConfig(hfConfigFromGguf(view(meta, [])), 'x.gguf');
  assert.equal(c.architecture, 'Qwen3ForCausalLM');
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.headDim, 128);
  assert.equal(c.vocabSize, 1000);
});

test('gpt2 takes LayerNorm epsilon and gelu_new; qwen2 maps to Qwen2ForCausalLM', () => {
  const meta = common('gpt2', { 'gpt2.attention.layer_norm_epsilon': 1e-5 });
  delete (meta as Record<string, unknown>)['gpt2.attention.layer_norm_rms_epsilon'];
  const c = parseModelConfig(hfConfigFromGguf(view(meta)), 'x.gguf');
  assert.equal(c.architecture, 'GPT2LMHeadModel');
  assert.equal(c.normEps, 1e-5);
  assert.equal(c.raw.activation_function, 'gelu_new');
  assert.equal(c.maxPositionEmbeddings, 4096);
  assert.equal(parseModelConfig(hfConfigFromGguf(view(common('qwen2'))), 'x').architecture, 'Qwen2ForCausalLM');
});

test('rope scaling keys become transformers rope_scaling', () => {
  const yarn = common('qwen2', {
    'qwen2.rope.scaling.type': 'yarn',
    'qwen2.rope.scaling.factor': 4,
    'qwen2.rope.scaling.original_context_length': 32768,
  });
  const c = parseModelConfig(hfConfigFromGguf(view(yarn)), 'x');
  assert.deepEqual(c.ropeScaling, {
    rope_type: 'yarn',
    type: 'yarn',
    factor: 4,
    original_max_position_embeddings: 32768,
  });
  const linear = common('llama', { 'llama.rope.scaling.type': 'linear', 'llama.rope.scaling.factor': 2 });
  assert.deepEqual(parseModelConfig(hfConfigFromGguf(view(linear)), 'x').ropeScaling, {
    rope_type: 'linear',
    type: 'linear',
    factor: 2,
  });
  const bad = common('llama', { 'llama.rope.scaling.type': 'su' });
  assert.throws(
    () => hfConfigFromGguf(view(bad)),
    /x\.gguf: metadata llama\.rope\.scaling\.type "su" is not supported/,
  );
});

test('the families landing on other branches map their keys (gemma2/3, phi3, qwen2moe, qwen3moe, bert)', () => {
  const g2 = hfConfigFromGguf(
    view(
      common('gemma2', {
        'gemma2.attn_logit_softcapping': 50,
        'gemma2.final_logit_softcapping': 30,
        'gemma2.attention.sliding_window': 8,
        'gemma2.attention.key_length': 64,
      }),
    ),
  );
  assert.equal(g2.architectures?.toString(), 'Gemma2ForCausalLM');
  assert.equal(g2.attn_logit_softcapping, 50);
  assert.equal(g2.final_logit_softcapping, 30);
  assert.equal(g2.sliding_window, 8);
  assert.equal(g2.query_pre_attn_scalar, 64);
  assert.deepEqual((g2.layer_types as string[]).slice(0, 2), ['sliding_attention', 'full_attention']);
  const g3 = hfConfigFromGguf(view(common('gemma3', { 'gemma3.attention.sliding_window': 512 })));
  assert.equal(g3.model_type, 'gemma3_text');
  assert.equal(g3.rope_local_base_freq, 10000);
  assert.deepEqual(g3.layer_types, [...Array(5).fill('sliding_attention'), 'full_attention']);
  const phi = parseModelConfig(hfConfigFromGguf(view(common('phi3', { 'phi3.rope.dimension_count': 48 }))), 'x');
  assert.equal(phi.architecture, 'Phi3ForCausalLM');
  assert.equal(phi.partialRotaryFactor, 0.75);
  const moe = hfConfigFromGguf(
    view(
      common('qwen3moe', {
        'qwen3moe.expert_count': 8,
        'qwen3moe.expert_used_count': 2,
        'qwen3moe.expert_feed_forward_length': 64,
      }),
    ),
  );
  assert.deepEqual(
    [moe.architectures, moe.num_experts, moe.num_experts_per_tok, moe.moe_intermediate_size, moe.norm_topk_prob],
    [['Qwen3MoeForCausalLM'], 8, 2, 64, true],
  );
  const moe2 = hfConfigFromGguf(view(common('qwen2moe', { 'qwen2moe.expert_shared_feed_forward_length': 128 })));
  assert.equal(moe2.shared_expert_intermediate_size, 128);
  const bert = parseModelConfig(
    hfConfigFromGguf(
      view(common('bert', { 'bert.attention.layer_norm_epsilon': 1e-12, 'tokenizer.ggml.token_type_count': 2 })),
    ),
    'x',
  );
  assert.equal(bert.architecture, 'BertModel');
  assert.equal(bert.raw.type_vocab_size, 2);
});

test('nomic-bert maps to NomicBertModel: rope base, LayerNorm epsilon, token types, SwiGLU; nomic-bert-moe is refused', () => {
  const meta = common('nomic-bert', {
    'nomic-bert.attention.layer_norm_epsilon': 1e-12,
    'nomic-bert.rope.freq_base': 1000,
    'nomic-bert.pooling_type': 1,
    'tokenizer.ggml.token_type_count': 2,
  });
  delete (meta as Record<string, unknown>)['nomic-bert.attention.layer_norm_rms_epsilon'];
  const c = parseModelConfig(hfConfigFromGguf(view(meta, ['blk.0.attn_qkv.weight'])), 'x');
  assert.deepEqual(
    [c.architecture, c.modelType, c.ropeTheta, c.normEps, c.partialRotaryFactor, c.hiddenAct, c.raw.type_vocab_size],
    ['NomicBertModel', 'nomic_bert', 1000, 1e-12, 1, 'swiglu', 2],
  );
  assert.equal(c.raw.pagoda_pooling_type, 'mean');
  assert.throws(
    () => hfConfigFromGguf(view(common('nomic-bert-moe'))),
    /^UserError: x\.gguf: GGUF architecture "nomic-bert-moe" is not supported \(supported: .*nomic-bert\)$/,
  );
});

test("{arch}.pooling_type names the pooling (llama.cpp's numbers); a number past rank is refused", () => {
  const names = [0, 1, 2, 3, 4].map((n) => hfConfigFromGguf(view(common('bert', { 'bert.pooling_type': n }))));
  assert.deepEqual(
    names.map((c) => c.pagoda_pooling_type),
    ['none', 'mean', 'cls', 'last', 'rank'],
  );
  assert.equal(hfConfigFromGguf(view(common('qwen3', { 'qwen3.pooling_type': 3 }))).pagoda_pooling_type, 'last');
  assert.equal(hfConfigFromGguf(view(common('qwen3'))).pagoda_pooling_type, undefined);
  assert.throws(
    () => hfConfigFromGguf(view(common('bert', { 'bert.pooling_type': 7 }))),
    /x\.gguf: metadata bert\.pooling_type is 7 \(expected 0 none/,
  );
});

test('an unknown architecture or a missing key is refused in one line naming the file and the key', () => {
  assert.throws(
    () => hfConfigFromGguf(view(common('mamba'))),
    /x\.gguf: GGUF architecture "mamba" is not supported \(supported: llama, /,
  );
  const meta = common('llama');
  delete (meta as Record<string, unknown>)['llama.block_count'];
  assert.throws(
    () => hfConfigFromGguf(view(meta)),
    /x\.gguf: metadata llama\.block_count is missing \(expected a number\)/,
  );
  assert.throws(
    () => hfConfigFromGguf(view(common('llama', { 'llama.block_count': 'six' }))),
    /metadata llama\.block_count is "six", expected a number/,
  );
});

test("a partial rotary share is of the file's head size (key_length), not hidden / heads (Nemotron-Mini's differ)", () => {
  // hidden 256 over 4 heads is 64 per head; the heads are 128 wide, half of them rotated.
  const meta = common('nemotron', { 'nemotron.attention.key_length': 128, 'nemotron.rope.dimension_count': 64 });
  const c = parseModelConfig(hfConfigFromGguf(view(meta)), 'x.gguf');
  assert.equal(c.headDim, 128);
  assert.equal(c.partialRotaryFactor, 0.5);
});
