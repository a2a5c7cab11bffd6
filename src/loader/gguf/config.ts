import { UserError } from '../../util/errors.ts';
import type { GgufScalar } from './format.ts';

/** What config building needs of a GGUF file: its metadata and which tensors it holds. */
export interface GgufMetadataView {
  readonly path: string;
  value(key: string): GgufScalar | GgufScalar[] | undefined;
  hasTensor(name: string): boolean;
}

/** A GGUF architecture as transformers names it, and the config keys beyond the common ones. */
interface ArchInfo {
  architecture: string;
  modelType: string;
  extra?: (m: MetaReader) => Record<string, unknown>;
}

/** Reads `{arch}.*` keys, refusing a required one that is missing or not a number. */
class MetaReader {
  constructor(
    readonly view: GgufMetadataView,
    readonly arch: string,
  ) {}

  num(key: string): number | undefined {
    const v = this.view.value(`${this.arch}.${key}`);
    if (v === undefined) return undefined;
    if (typeof v !== 'number') {
      throw new UserError(
        `${this.view.path}: metadata ${this.arch}.${key} is ${JSON.stringify(String(v))}, expected a number`,
      );
    }
    return v;
  }

  need(key: string): number {
    const v = this.num(key);
    if (v === undefined)
      throw new UserError(`${this.view.path}: metadata ${this.arch}.${key} is missing (expected a number)`);
    return v;
  }
}

/** Gemma 2 27B scales queries by hidden / heads rather than head_dim (llama.cpp keys it on the layer count). */
function gemmaQueryScalar(m: MetaReader, layers27b: number): Record<string, unknown> {
  const hidden = m.need('embedding_length');
  const heads = m.need('attention.head_count');
  const headDim = m.num('attention.key_length') ?? hidden / heads;
  return { query_pre_attn_scalar: m.need('block_count') === layers27b ? hidden / heads : headDim };
}

/**
 * The rotated share of each head (`rope.dimension_count`; all of it where the key is absent), of the head size the
 * file gives (`attention.key_length`, which may differ from hidden / heads: Nemotron-Mini's).
 */
function partialRotary(m: MetaReader): Record<string, unknown> {
  const rot = m.num('rope.dimension_count');
  const head = m.num('attention.key_length') ?? m.need('embedding_length') / m.need('attention.head_count');
  return { partial_rotary_factor: rot ? rot / head : 1 };
}

const moe = (m: MetaReader) => ({
  num_experts: m.num('expert_count'),
  num_experts_per_tok: m.num('expert_used_count'),
  moe_intermediate_size: m.num('expert_feed_forward_length'),
});

/** llama.cpp's `_scale` keys are Granite's multipliers; without attention.scale it scales by 1/sqrt(head_dim). */
const graniteScales = (m: MetaReader) => ({
  embedding_multiplier: m.num('embedding_scale') ?? 1,
  residual_multiplier: m.num('residual_scale') ?? 1,
  attention_multiplier:
    m.num('attention.scale') ??
    1 / Math.sqrt(m.num('attention.key_length') ?? m.need('embedding_length') / m.need('attention.head_count')),
  logits_scaling: m.num('logit_scale') ?? 1,
});

/** Command-R's and R7B's: a SwiGLU MLP, and the logit scale where the file has it (else CohereConfig's default applies). */
function cohereKeys(m: MetaReader): Record<string, unknown> {
  const scale = m.num('logit_scale');
  return { hidden_act: 'silu', ...(scale === undefined ? {} : { logit_scale: scale }) };
}

/** The depth llama.cpp's exaone4 reads as the hybrid 32B model. */
export const EXAONE4_HYBRID_LAYERS = 64;

const ARCHS: Record<string, ArchInfo> = {
  // Mixtral is stored as llama with experts (llama.cpp renormalises their top-k weights, as Mixtral does).
  llama: {
    architecture: 'LlamaForCausalLM',
    modelType: 'llama',
    extra: (m) =>
      m.num('expert_count')
        ? { architectures: ['MixtralForCausalLM'], model_type: 'mixtral', sliding_window: null, ...moe(m) }
        : {},
  },
  qwen2: { architecture: 'Qwen2ForCausalLM', modelType: 'qwen2' },
  // Qwen2-VL's and Qwen2.5-VL's language models (llama.cpp's qwen2vl, Ollama's qwen25vl with the vision tower beside
  // it, unread): for text alone their M-RoPE is the plain rotation.
  qwen2vl: { architecture: 'Qwen2ForCausalLM', modelType: 'qwen2' },
  qwen25vl: { architecture: 'Qwen2ForCausalLM', modelType: 'qwen2' },
  // Qwen3-VL's (llama.cpp's and Ollama's names alike): its deepstack adds visual features only, so text is Qwen3's.
  qwen3vl: { architecture: 'Qwen3ForCausalLM', modelType: 'qwen3' },
  qwen3vlmoe: {
    architecture: 'Qwen3MoeForCausalLM',
    modelType: 'qwen3_moe',
    extra: (m) => ({ ...moe(m), norm_topk_prob: true }),
  },
  qwen3: { architecture: 'Qwen3ForCausalLM', modelType: 'qwen3' },
  gpt2: {
    architecture: 'GPT2LMHeadModel',
    modelType: 'gpt2',
    extra: () => ({ activation_function: 'gelu_new' }),
  },
  // GPTBigCode: multi-query attention (head_count_kv 1), GELU.
  starcoder: {
    architecture: 'GPTBigCodeForCausalLM',
    modelType: 'gpt_bigcode',
    extra: () => ({ activation_function: 'gelu_pytorch_tanh' }),
  },
  gemma: { architecture: 'GemmaForCausalLM', modelType: 'gemma', extra: () => ({ hidden_act: 'gelu_pytorch_tanh' }) },
  gemma2: {
    architecture: 'Gemma2ForCausalLM',
    modelType: 'gemma2',
    extra: (m) => ({
      hidden_act: 'gelu_pytorch_tanh',
      sliding_window: m.num('attention.sliding_window') ?? 4096,
      attn_logit_softcapping: m.num('attn_logit_softcapping') ?? null,
      final_logit_softcapping: m.num('final_logit_softcapping') ?? null,
      layer_types: Array.from({ length: m.need('block_count') }, (_, i) =>
        i % 2 === 0 ? 'sliding_attention' : 'full_attention',
      ),
      ...gemmaQueryScalar(m, 46),
    }),
  },
  gemma3: {
    architecture: 'Gemma3ForCausalLM',
    modelType: 'gemma3_text',
    extra: (m) => {
      const window = m.num('attention.sliding_window') ?? 0;
      return {
        hidden_act: 'gelu_pytorch_tanh',
        sliding_window: window || null,
        rope_local_base_freq: m.num('rope.freq_base_swa') ?? 10000,
        final_logit_softcapping: m.num('final_logit_softcapping') ?? null,
        layer_types: Array.from({ length: m.need('block_count') }, (_, i) =>
          window && i % 6 < 5 ? 'sliding_attention' : 'full_attention',
        ),
        ...gemmaQueryScalar(m, 62),
      };
    },
  },
  phi3: {
    architecture: 'Phi3ForCausalLM',
    modelType: 'phi3',
    extra: (m) => ({ sliding_window: m.num('attention.sliding_window') ?? null, ...partialRotary(m) }),
  },
  // Files llama.cpp's converter writes in Llama's layout under their own names (InternLM2's q/k/v split from its
  // grouped wqkv; EXAONE 3 / 3.5, whose q/k rows it leaves as they are and rotates NeoX-style).
  internlm2: { architecture: 'LlamaForCausalLM', modelType: 'llama' },
  // Mistral 3's language model (Ollama's mistral-small3.1 / 3.2 files keep the vision tower beside it, unread).
  mistral3: {
    architecture: 'MistralForCausalLM',
    modelType: 'mistral',
    extra: (m) => {
      for (const key of ['attention.temperature_scale', 'rope.scaling.yarn_log_multiplier']) {
        if (m.num(key)) {
          throw new UserError(
            `${m.view.path}: metadata ${m.arch}.${key} is not supported (attention temperature scaling)`,
          );
        }
      }
      return { sliding_window: null };
    },
  },
  exaone: { architecture: 'LlamaForCausalLM', modelType: 'llama' },
  ernie4_5: { architecture: 'Ernie4_5ForCausalLM', modelType: 'ernie4_5' },
  arcee: { architecture: 'ArceeForCausalLM', modelType: 'arcee', extra: () => ({ hidden_act: 'relu2' }) },
  seed_oss: {
    architecture: 'SeedOssForCausalLM',
    modelType: 'seed_oss',
    extra: (m) => ({ attention_bias: m.view.hasTensor('blk.0.attn_q.bias') }),
  },
  // GLM-4-9B and CodeGeeX4 (ChatGLM's checkpoints, q/k/v fused; transformers' GlmForCausalLM's, apart).
  chatglm: {
    architecture: 'GlmForCausalLM',
    modelType: 'glm',
    extra: (m) => partialRotary(m),
  },
  glm4: {
    architecture: 'Glm4ForCausalLM',
    modelType: 'glm4',
    extra: (m) => ({ attention_bias: m.view.hasTensor('blk.0.attn_q.bias'), ...partialRotary(m) }),
  },
  // llama.cpp leaves every fourth layer unrotated (no key says so).
  smollm3: { architecture: 'SmolLM3ForCausalLM', modelType: 'smollm3', extra: () => ({ no_rope_layer_interval: 4 }) },
  granite: { architecture: 'GraniteForCausalLM', modelType: 'granite', extra: (m) => graniteScales(m) },
  // GraniteMoeShared is stored as granitemoe with an (ungated) shared expert.
  granitemoe: {
    architecture: 'GraniteMoeForCausalLM',
    modelType: 'granitemoe',
    extra: (m) => ({
      ...graniteScales(m),
      ...moe(m),
      shared_intermediate_size: m.num('expert_shared_feed_forward_length') ?? 0,
    }),
  },
  // OLMo 3 is stored as olmo2 with a sliding window (three layers of every four, as transformers' default).
  olmo2: {
    architecture: 'Olmo2ForCausalLM',
    modelType: 'olmo2',
    extra: (m) => {
      const window = m.num('attention.sliding_window');
      return window ? { architectures: ['Olmo3ForCausalLM'], model_type: 'olmo3', sliding_window: window } : {};
    },
  },
  // EXAONE 4: llama.cpp makes only the 64-layer model (32B) hybrid, three sliding layers of every four (window 4096
  // unless the key says), the full ones unrotated; every other depth is full attention, rotated, throughout.
  exaone4: {
    architecture: 'Exaone4ForCausalLM',
    modelType: 'exaone4',
    extra: (m) =>
      m.need('block_count') === EXAONE4_HYBRID_LAYERS
        ? { sliding_window: m.num('attention.sliding_window') ?? 4096, sliding_window_pattern: 4 }
        : { sliding_window: null },
  },
  starcoder2: {
    architecture: 'Starcoder2ForCausalLM',
    modelType: 'starcoder2',
    extra: (m) => ({
      hidden_act: 'gelu_pytorch_tanh',
      use_bias: m.view.hasTensor('blk.0.attn_q.bias'),
      sliding_window: m.num('attention.sliding_window') ?? null,
    }),
  },
  // Nemotron: llama.cpp's converter stores its norms as 1 + w (tensor-names.ts undoes it).
  nemotron: {
    architecture: 'NemotronForCausalLM',
    modelType: 'nemotron',
    extra: (m) => ({
      hidden_act: 'relu2',
      attention_bias: m.view.hasTensor('blk.0.attn_q.bias'),
      mlp_bias: m.view.hasTensor('blk.0.ffn_up.bias'),
      ...partialRotary(m),
    }),
  },
  // StableLM 2 12B's parallel residual (no ffn_norm) and per-head q/k norms are refused by the model as in folders.
  stablelm: {
    architecture: 'StableLmForCausalLM',
    modelType: 'stablelm',
    extra: (m) => ({
      use_qkv_bias: m.view.hasTensor('blk.0.attn_q.bias'),
      use_parallel_residual: !m.view.hasTensor('blk.0.ffn_norm.weight'),
      qk_layernorm: m.view.hasTensor('blk.0.attn_q_norm.weight'),
      ...partialRotary(m),
    }),
  },
  phi2: {
    architecture: 'PhiForCausalLM',
    modelType: 'phi',
    extra: (m) => ({ hidden_act: 'gelu_new', ...partialRotary(m) }),
  },
  'command-r': { architecture: 'CohereForCausalLM', modelType: 'cohere', extra: (m) => cohereKeys(m) },
  // Command R7B: llama.cpp slides three layers of every four (no key says so) and rotates only those.
  cohere2: {
    architecture: 'Cohere2ForCausalLM',
    modelType: 'cohere2',
    extra: (m) => ({
      ...cohereKeys(m),
      sliding_window: m.need('attention.sliding_window'),
      sliding_window_pattern: 4,
    }),
  },
  qwen2moe: {
    architecture: 'Qwen2MoeForCausalLM',
    modelType: 'qwen2_moe',
    extra: (m) => ({ ...moe(m), shared_expert_intermediate_size: m.num('expert_shared_feed_forward_length') }),
  },
  qwen3moe: {
    architecture: 'Qwen3MoeForCausalLM',
    modelType: 'qwen3_moe',
    extra: (m) => ({ ...moe(m), norm_topk_prob: true }),
  },
  // llama.cpp never renormalises OLMoE's top-k weights (transformers' default, and every released config's).
  olmoe: {
    architecture: 'OlmoeForCausalLM',
    modelType: 'olmoe',
    extra: (m) => ({ ...moe(m), norm_topk_prob: false }),
  },
  bert: {
    architecture: 'BertModel',
    modelType: 'bert',
    extra: (m) => ({
      type_vocab_size: m.view.value('tokenizer.ggml.token_type_count') ?? 2,
      hidden_act: 'gelu',
    }),
  },
  // Not a transformers architecture (NomicBertModel is remote code): models/bert.ts knows it by its model type.
  'nomic-bert': {
    architecture: 'NomicBertModel',
    modelType: 'nomic_bert',
    extra: (m) => ({
      type_vocab_size: m.view.value('tokenizer.ggml.token_type_count') ?? 2,
      hidden_act: 'swiglu',
      ...partialRotary(m),
    }),
  },
};

/** The GGUF architecture names pagoda maps to a model config. */
export const GGUF_ARCHITECTURES = Object.keys(ARCHS);

/** llama.cpp's `{arch}.rope.scaling.*` keys → transformers' rope_scaling (llama3's factors come as rope_freqs). */
function ropeScaling(m: MetaReader): Record<string, unknown> | null {
  const type = m.view.value(`${m.arch}.rope.scaling.type`);
  const factor = m.num('rope.scaling.factor') ?? m.num('rope.scale_linear');
  // Ollama's converter writes an empty type (and factor 0) for a model without scaling.
  if (type === undefined || type === 'none' || type === '') {
    return factor && factor !== 1 ? { rope_type: 'linear', factor } : null;
  }
  if (type === 'linear') return { rope_type: 'linear', factor };
  if (type === 'yarn') {
    return {
      rope_type: 'yarn',
      factor,
      original_max_position_embeddings: m.num('rope.scaling.original_context_length'),
      ...(m.num('rope.scaling.attn_factor') !== undefined
        ? { attention_factor: m.num('rope.scaling.attn_factor') }
        : {}),
    };
  }
  throw new UserError(
    `${m.view.path}: metadata ${m.arch}.rope.scaling.type "${type}" is not supported (expected none, linear or yarn)`,
  );
}

const idOf = (v: unknown) => (typeof v === 'number' ? v : undefined);

/** llama.cpp's `{arch}.pooling_type` values (LLAMA_POOLING_TYPE_*), by number. */
export const GGUF_POOLING = ['none', 'mean', 'cls', 'last', 'rank'] as const;
export type GgufPooling = (typeof GGUF_POOLING)[number];

/**
 * The pooling an embedding or reranking GGUF names; undefined for a file without the key (a generating model). A
 * classifier head (`cls.output`) without the key ranks, as llama.cpp's converter leaves the key to modules.json.
 */
function poolingType(m: MetaReader): GgufPooling | undefined {
  const n = m.num('pooling_type');
  if (n === undefined) return m.view.hasTensor('cls.output.weight') ? 'rank' : undefined;
  const name = GGUF_POOLING[n];
  if (!name) {
    throw new UserError(
      `${m.view.path}: metadata ${m.arch}.pooling_type is ${n} (expected 0 none, 1 mean, 2 cls, 3 last or 4 rank)`,
    );
  }
  return name;
}

/**
 * The config.json transformers would have written for this GGUF file, from its `{arch}.*` keys and tensor list, so
 * hf-config.ts's parseModelConfig gives the same ModelConfig the safetensors path does.
 */
export function hfConfigFromGguf(view: GgufMetadataView): Record<string, unknown> {
  const arch = view.value('general.architecture');
  if (typeof arch !== 'string') throw new UserError(`${view.path}: metadata general.architecture is missing`);
  const info = ARCHS[arch];
  if (!info) {
    throw new UserError(
      `${view.path}: GGUF architecture "${arch}" is not supported (supported: ${GGUF_ARCHITECTURES.join(', ')})`,
    );
  }
  const m = new MetaReader(view, arch);
  const hidden = m.need('embedding_length');
  const heads = m.need('attention.head_count');
  const tokens = view.value('tokenizer.ggml.tokens');
  const vocab = m.num('vocab_size') ?? (Array.isArray(tokens) ? tokens.length : undefined);
  if (vocab === undefined) {
    throw new UserError(`${view.path}: neither ${arch}.vocab_size nor tokenizer.ggml.tokens gives the vocabulary size`);
  }
  const eps = m.num('attention.layer_norm_rms_epsilon') ?? m.num('attention.layer_norm_epsilon');
  const config: Record<string, unknown> = {
    architectures: [info.architecture],
    model_type: info.modelType,
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: m.num('feed_forward_length'),
    num_hidden_layers: m.need('block_count'),
    num_attention_heads: heads,
    num_key_value_heads: m.num('attention.head_count_kv') ?? heads,
    head_dim: m.num('attention.key_length') ?? hidden / heads,
    max_position_embeddings: m.num('context_length') ?? 2048,
    rms_norm_eps: eps,
    layer_norm_epsilon: eps,
    layer_norm_eps: eps,
    rope_theta: m.num('rope.freq_base') ?? 10000,
    rope_scaling: ropeScaling(m),
    tie_word_embeddings: !view.hasTensor('output.weight'),
    attention_bias: info.architecture === 'LlamaForCausalLM' && view.hasTensor('blk.0.attn_q.bias'),
    mlp_bias: info.architecture === 'LlamaForCausalLM' && view.hasTensor('blk.0.ffn_up.bias'),
    hidden_act: 'silu',
    bos_token_id: idOf(view.value('tokenizer.ggml.bos_token_id')),
    eos_token_id: idOf(view.value('tokenizer.ggml.eos_token_id')),
    ...info.extra?.(m),
  };
  // Not a transformers key: what pooling-load.ts reads for a GGUF's task and pooling (config.json has modules.json).
  const pooling = poolingType(m);
  if (pooling) config.pagoda_pooling_type = pooling;
  if (pooling === 'rank') {
    const labels = view.value(`${arch}.classifier.output_labels`);
    config.num_labels = Array.isArray(labels) ? labels.length : 1;
    // A decoder reranker's input: this text with {query} and {document} filled in (llama.cpp's rerank template).
    const template = view.value('tokenizer.chat_template.rerank');
    if (typeof template === 'string') config.pagoda_rerank_template = template;
  }
  if (arch === 'gpt2') config.n_positions = config.max_position_embeddings;
  return config;
}
