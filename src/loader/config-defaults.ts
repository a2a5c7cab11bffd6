/**
 * transformers' config-class defaults for the fields a published config.json may leave out, by `model_type`: a field
 * absent from the file takes the class's value when transformers loads it (Gemma 3's multimodal checkpoints list only
 * a few text fields; Gemma 2's soft-caps default on; CohereConfig's logit scale). An explicit null stays null.
 */
const CLASS_DEFAULTS: Record<string, Record<string, unknown>> = {
  cohere: { logit_scale: 0.0625, layer_norm_eps: 1e-5 },
  cohere2: { logit_scale: 0.0625, layer_norm_eps: 1e-5, sliding_window: 4096, sliding_window_pattern: 4 },
  gemma: {
    vocab_size: 256000,
    hidden_size: 3072,
    intermediate_size: 24576,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 16,
    head_dim: 256,
    max_position_embeddings: 8192,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
  },
  gemma2: {
    vocab_size: 256000,
    hidden_size: 2304,
    intermediate_size: 9216,
    num_hidden_layers: 26,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    head_dim: 256,
    hidden_activation: 'gelu_pytorch_tanh',
    max_position_embeddings: 8192,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    query_pre_attn_scalar: 256,
    sliding_window: 4096,
    final_logit_softcapping: 30.0,
    attn_logit_softcapping: 50.0,
  },
  gemma3_text: {
    vocab_size: 262208,
    hidden_size: 2304,
    intermediate_size: 9216,
    num_hidden_layers: 26,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    head_dim: 256,
    hidden_activation: 'gelu_pytorch_tanh',
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-6,
    rope_theta: 1_000_000,
    rope_local_base_freq: 10000,
    query_pre_attn_scalar: 256,
    sliding_window: 4096,
    sliding_window_pattern: 6,
    final_logit_softcapping: null,
    attn_logit_softcapping: null,
  },
};

/**
 * Model types whose checkpoints keep the language model's config under `text_config` (Gemma3ForConditionalGeneration,
 * Mistral3ForConditionalGeneration;
 * the Qwen VL models in transformers 5's layout and Qwen3-VL's: their 4.x files keep it at the top level).
 */
const TEXT_CONFIG_OF: Record<string, string> = {
  gemma3: 'gemma3_text',
  mistral3: 'mistral',
  qwen2_vl: 'qwen2_vl_text',
  qwen2_5_vl: 'qwen2_5_vl_text',
  qwen3_vl: 'qwen3_vl_text',
};

/**
 * The config of the model pagoda runs: a multimodal checkpoint's `text_config` lifted to the top (the file's own
 * `architectures`, dtype and token ids kept over it), then the class defaults under every missing field.
 */
export function textModelConfig(raw: Record<string, unknown>): Record<string, unknown> {
  const modelType = typeof raw.model_type === 'string' ? raw.model_type : '';
  const textType = TEXT_CONFIG_OF[modelType];
  let merged = raw;
  if (textType) {
    const text = (typeof raw.text_config === 'object' && raw.text_config) || {};
    const { text_config: _, vision_config: __, ...outer } = raw;
    merged = { model_type: textType, ...text, ...outer };
  }
  const textModelType = textType ?? modelType;
  return { ...CLASS_DEFAULTS[textModelType], ...merged };
}
