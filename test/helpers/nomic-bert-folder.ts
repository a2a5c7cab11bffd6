import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSafetensors } from '../../src/loader/safetensors.ts';
import { TINY_NOMIC, tinyNomicTensors } from './nomic-bert-gguf.ts';

/**
 * NomicBertConfig as nomic-embed-text-v1.5's config.json spells it, at the tiny model's shape. Positions: n_positions
 * 8192 beside max_trained_positions (the context llama.cpp's converter and vLLM keep), as the published model has.
 */
export function tinyNomicConfig(opts: { attentionBias?: boolean } = {}): Record<string, unknown> {
  const { hidden, heads, layers, ff, context, ropeBase, eps, vocab } = TINY_NOMIC;
  return {
    architectures: ['NomicBertModel'],
    auto_map: {
      AutoConfig: 'nomic-ai/nomic-bert-2048--configuration_hf_nomic_bert.NomicBertConfig',
      AutoModel: 'nomic-ai/nomic-bert-2048--modeling_hf_nomic_bert.NomicBertModel',
    },
    model_type: 'nomic_bert',
    activation_function: 'swiglu',
    bos_token_id: null,
    eos_token_id: null,
    causal: false,
    layer_norm_epsilon: eps,
    max_trained_positions: context,
    mlp_fc1_bias: false,
    mlp_fc2_bias: false,
    n_embd: hidden,
    n_head: heads,
    n_inner: ff,
    n_layer: layers,
    n_positions: 8192,
    pad_vocab_size_multiple: 64,
    parallel_block: false,
    prenorm: false,
    qkv_proj_bias: opts.attentionBias === true,
    rotary_emb_base: ropeBase,
    rotary_emb_fraction: 1.0,
    rotary_emb_interleaved: false,
    rotary_emb_scale_base: null,
    rotary_scaling_factor: null,
    torch_dtype: 'float32',
    type_vocab_size: 2,
    use_rms_norm: false,
    vocab_size: vocab,
  };
}

/**
 * Writes the tiny nomic-bert (nomic-bert-gguf.ts's weights) as a Hugging Face sentence-transformers folder as
 * nomic-embed-text-v1.5 ships: config.json (`config`, tinyNomicConfig's by default), model.safetensors under
 * NomicBertModel's names, the tokenizer of the BERT fixture at `bertFixture`, modules.json in the 2–5 style with mean
 * Pooling and Normalize, and the task prefixes as named prompts.
 */
export function writeTinyNomicBertFolder(
  out: string,
  bertFixture: string,
  opts: { attentionBias?: boolean; config?: Record<string, unknown> } = {},
): void {
  mkdirSync(join(out, '1_Pooling'), { recursive: true });
  mkdirSync(join(out, '2_Normalize'), { recursive: true });
  const json = (file: string, value: unknown) => writeFileSync(join(out, file), JSON.stringify(value, null, 2));
  json('config.json', opts.config ?? tinyNomicConfig(opts));
  const tensors = tinyNomicTensors(opts).map((t) => ({ name: t.hf, shape: t.shape, data: t.data }));
  writeFileSync(join(out, 'model.safetensors'), encodeSafetensors(tensors));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(bertFixture, f), join(out, f));
  const module = (idx: number, path: string, kind: string) => ({
    idx,
    name: String(idx),
    path,
    type: `sentence_transformers.models.${kind}`,
  });
  json('modules.json', [
    module(0, '', 'Transformer'),
    module(1, '1_Pooling', 'Pooling'),
    module(2, '2_Normalize', 'Normalize'),
  ]);
  json('1_Pooling/config.json', {
    word_embedding_dimension: TINY_NOMIC.hidden,
    pooling_mode_cls_token: false,
    pooling_mode_mean_tokens: true,
    pooling_mode_max_tokens: false,
    pooling_mode_mean_sqrt_len_tokens: false,
  });
  json('sentence_bert_config.json', { max_seq_length: 8192, do_lower_case: false });
  json('config_sentence_transformers.json', {
    prompts: {
      search_query: 'search_query: ',
      search_document: 'search_document: ',
      classification: 'classification: ',
      clustering: 'clustering: ',
    },
    default_prompt_name: null,
  });
}
