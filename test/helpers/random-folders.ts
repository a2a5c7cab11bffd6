import { copyFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSafetensors } from '../../src/loader/safetensors.ts';
import { mulberry32 } from '../../src/util/random.ts';

/**
 * Tiny random Hugging Face folders of the families no shared fixture covers, for llama.cpp to check pagoda against
 * (test/models/gguf-llama-cpp.test.ts): seeded weights, every norm weight and bias random too so a misplaced one shows,
 * and the tokenizer and golden prompts of the fixture at `tokenizerFixture` (a 1024-piece vocabulary; the prompts
 * are token sequences to teacher-force, not these models' outputs).
 */
const HIDDEN = 64;
const HEADS = 4;
const KV_HEADS = 2;
const HEAD_DIM = 16;
const FF = 160;
const LAYERS = 4;
const VOCAB = 1024;

/** A tensor's name and shape, and what it is: a matrix, a norm's weight (around 1), or a bias. */
type Spec = readonly [name: string, shape: number[], kind?: 'norm' | 'bias'];

function writeFolder(
  out: string,
  seed: number,
  config: Record<string, unknown>,
  specs: Spec[],
  tokenizerFixture: string,
) {
  mkdirSync(out, { recursive: true });
  const random = mulberry32(seed);
  const tensors = specs.map(([name, shape, kind]) => {
    const [around, spread] = kind === 'norm' ? [1, 0.3] : kind === 'bias' ? [0, 0.1] : [0, 0.35];
    const n = shape.reduce((a, d) => a * d, 1);
    return { name, shape, data: Float32Array.from({ length: n }, () => around + spread * (2 * random() - 1)) };
  });
  writeFileSync(join(out, 'model.safetensors'), encodeSafetensors(tensors));
  const shape = {
    vocab_size: VOCAB,
    hidden_size: HIDDEN,
    intermediate_size: FF,
    num_hidden_layers: LAYERS,
    num_attention_heads: HEADS,
    num_key_value_heads: KV_HEADS,
    max_position_embeddings: 512,
    torch_dtype: 'float32',
    bos_token_id: 1,
    eos_token_id: 2,
  };
  writeFileSync(join(out, 'config.json'), JSON.stringify({ ...shape, ...config }, null, 2));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'golden.json']) {
    copyFileSync(join(tokenizerFixture, f), join(out, f));
  }
  return out;
}

const layers = (per: (p: string) => Spec[], count = LAYERS) =>
  Array.from({ length: count }, (_, i) => per(`model.layers.${i}`)).flat();

/** q, k, v (`kvHeads` heads each for k and v) and the output projection named `o`, biased or not. */
const attention = (p: string, o: string, biased: boolean, kvHeads = KV_HEADS): Spec[] => {
  const linear = (name: string, out: number, inp: number): Spec[] => {
    const weight: Spec = [`${p}.${name}.weight`, [out, inp]];
    return biased ? [weight, [`${p}.${name}.bias`, [out], 'bias']] : [weight];
  };
  return [
    ...linear('self_attn.q_proj', HEADS * HEAD_DIM, HIDDEN),
    ...linear('self_attn.k_proj', kvHeads * HEAD_DIM, HIDDEN),
    ...linear('self_attn.v_proj', kvHeads * HEAD_DIM, HIDDEN),
    ...linear(`self_attn.${o}`, HIDDEN, HEADS * HEAD_DIM),
  ];
};

/** Llama's gated MLP: gate_proj, up_proj, down_proj. */
const gatedMlp = (p: string): Spec[] => [
  [`${p}.mlp.gate_proj.weight`, [FF, HIDDEN]],
  [`${p}.mlp.up_proj.weight`, [FF, HIDDEN]],
  [`${p}.mlp.down_proj.weight`, [HIDDEN, FF]],
];

/**
 * OLMo 2's layer (EXAONE 4's too): no pre-norms, q and k normed (weights of `qNorm` and `kNorm` values: across heads,
 * or per head), the norms of the attention and MLP outputs.
 */
const postNormLayer = (p: string, qNorm: number, kNorm: number): Spec[] => [
  ...attention(p, 'o_proj', false),
  [`${p}.self_attn.q_norm.weight`, [qNorm], 'norm'],
  [`${p}.self_attn.k_norm.weight`, [kNorm], 'norm'],
  [`${p}.post_attention_layernorm.weight`, [HIDDEN], 'norm'],
  ...gatedMlp(p),
  [`${p}.post_feedforward_layernorm.weight`, [HIDDEN], 'norm'],
];

const layerNorm = (name: string): Spec[] => [
  [`${name}.weight`, [HIDDEN], 'norm'],
  [`${name}.bias`, [HIDDEN], 'bias'],
];

/** A plain MLP: up_proj, then down_proj. */
const plainMlp = (p: string): Spec[] => [
  [`${p}.mlp.up_proj.weight`, [FF, HIDDEN]],
  [`${p}.mlp.down_proj.weight`, [HIDDEN, FF]],
];

/**
 * Llama's pre-norm layer: the input norm, attention (q/k/v biased where asked, o_proj never; q and k normed with
 * weights of the given widths where asked), the post-attention norm, then `mlp` (the MLP's tensors, and any others
 * the family adds).
 */
const llamaLayer = (
  p: string,
  mlp: Spec[],
  opts: { qkvBiased?: boolean; kvHeads?: number; qkNorm?: readonly [q: number, k: number] } = {},
): Spec[] => [
  [`${p}.input_layernorm.weight`, [HIDDEN], 'norm'],
  ...attention(p, 'o_proj', opts.qkvBiased ?? false, opts.kvHeads).filter(
    ([name]) => name !== `${p}.self_attn.o_proj.bias`,
  ),
  ...(opts.qkNorm
    ? ([
        [`${p}.self_attn.q_norm.weight`, [opts.qkNorm[0]], 'norm'],
        [`${p}.self_attn.k_norm.weight`, [opts.qkNorm[1]], 'norm'],
      ] satisfies Spec[])
    : []),
  [`${p}.post_attention_layernorm.weight`, [HIDDEN], 'norm'],
  ...mlp,
];

/** A Llama-layout model: the embeddings, `layer` for each layer, the final norm, and an LM head unless `tied`. */
const llamaModel = (layer: (p: string) => Spec[], tied: boolean): Spec[] => [
  ['model.embed_tokens.weight', [VOCAB, HIDDEN]],
  ...layers(layer),
  ['model.norm.weight', [HIDDEN], 'norm'],
  ...(tied ? [] : ([['lm_head.weight', [VOCAB, HIDDEN]]] satisfies Spec[])),
];

/** OLMo 2, or (`generation` 3) OLMo 3 with a window of 8 on three layers of every four. */
export function writeTinyOlmoFolder(out: string, generation: 2 | 3, tokenizerFixture: string): string {
  const specs: Spec[] = [
    ['model.embed_tokens.weight', [VOCAB, HIDDEN]],
    ...layers((p) => postNormLayer(p, HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM)),
    ['model.norm.weight', [HIDDEN], 'norm'],
    ['lm_head.weight', [VOCAB, HIDDEN]],
  ];
  const config: Record<string, unknown> = {
    architectures: [generation === 2 ? 'Olmo2ForCausalLM' : 'Olmo3ForCausalLM'],
    model_type: generation === 2 ? 'olmo2' : 'olmo3',
    rms_norm_eps: 1e-6,
    rope_theta: 500000,
    tie_word_embeddings: false,
    hidden_act: 'silu',
  };
  if (generation === 3) {
    config.sliding_window = 8;
    config.layer_types = ['sliding_attention', 'sliding_attention', 'sliding_attention', 'full_attention'];
  }
  return writeFolder(out, 2000 + generation, config, specs, tokenizerFixture);
}

/** StarCoder2: LayerNorms, biased projections, GQA, a GELU MLP, tied embeddings. */
export function writeTinyStarcoder2Folder(out: string, tokenizerFixture: string): string {
  const specs: Spec[] = [
    ['model.embed_tokens.weight', [VOCAB, HIDDEN]],
    ...layers((p) => [
      ...layerNorm(`${p}.input_layernorm`),
      ...attention(p, 'o_proj', true),
      ...layerNorm(`${p}.post_attention_layernorm`),
      [`${p}.mlp.c_fc.weight`, [FF, HIDDEN]],
      [`${p}.mlp.c_fc.bias`, [FF], 'bias'],
      [`${p}.mlp.c_proj.weight`, [HIDDEN, FF]],
      [`${p}.mlp.c_proj.bias`, [HIDDEN], 'bias'],
    ]),
    ...layerNorm('model.norm'),
  ];
  const config = {
    architectures: ['Starcoder2ForCausalLM'],
    model_type: 'starcoder2',
    norm_epsilon: 1e-5,
    rope_theta: 100000,
    hidden_act: 'gelu_pytorch_tanh',
    use_bias: true,
    sliding_window: null,
    tie_word_embeddings: true,
  };
  return writeFolder(out, 2004, config, specs, tokenizerFixture);
}

/** StableLM 2: LayerNorms with biases, biased q/k/v (o_proj unbiased), a quarter of each head rotated, SwiGLU. */
export function writeTinyStablelmFolder(out: string, tokenizerFixture: string): string {
  const specs: Spec[] = [
    ['model.embed_tokens.weight', [VOCAB, HIDDEN]],
    ...layers((p) => [
      ...layerNorm(`${p}.input_layernorm`),
      ...attention(p, 'o_proj', true).filter(([name]) => name !== `${p}.self_attn.o_proj.bias`),
      ...layerNorm(`${p}.post_attention_layernorm`),
      ...gatedMlp(p),
    ]),
    ...layerNorm('model.norm'),
    ['lm_head.weight', [VOCAB, HIDDEN]],
  ];
  const config = {
    architectures: ['StableLmForCausalLM'],
    model_type: 'stablelm',
    layer_norm_eps: 1e-5,
    rope_theta: 10000,
    partial_rotary_factor: 0.25,
    hidden_act: 'silu',
    use_qkv_bias: true,
    qk_layernorm: false,
    use_parallel_residual: false,
    tie_word_embeddings: false,
  };
  return writeFolder(out, 2011, config, specs, tokenizerFixture);
}

/**
 * GPTBigCode (StarCoder 1): GPT-2's blocks with Linear weights, multi-query attention (c_attn: q, then one head's k
 * and v), learned positions, tied embeddings.
 */
export function writeTinyGptBigCodeFolder(out: string, tokenizerFixture: string): string {
  const biased = (name: string, out: number, inp: number): Spec[] => [
    [`${name}.weight`, [out, inp]],
    [`${name}.bias`, [out], 'bias'],
  ];
  const specs: Spec[] = [
    ['transformer.wte.weight', [VOCAB, HIDDEN]],
    ['transformer.wpe.weight', [512, HIDDEN]],
    ...Array.from({ length: LAYERS }, (_, i): Spec[] => {
      const p = `transformer.h.${i}`;
      return [
        ...layerNorm(`${p}.ln_1`),
        ...biased(`${p}.attn.c_attn`, HIDDEN + 2 * HEAD_DIM, HIDDEN),
        ...biased(`${p}.attn.c_proj`, HIDDEN, HIDDEN),
        ...layerNorm(`${p}.ln_2`),
        ...biased(`${p}.mlp.c_fc`, FF, HIDDEN),
        ...biased(`${p}.mlp.c_proj`, HIDDEN, FF),
      ];
    }).flat(),
    ...layerNorm('transformer.ln_f'),
  ];
  const config = {
    architectures: ['GPTBigCodeForCausalLM'],
    model_type: 'gpt_bigcode',
    n_embd: HIDDEN,
    n_head: HEADS,
    n_layer: LAYERS,
    n_inner: FF,
    n_positions: 512,
    // GPTBigCode's configs name no K/V head count: multi_query says one.
    num_key_value_heads: undefined,
    multi_query: true,
    activation_function: 'gelu_pytorch_tanh',
    layer_norm_epsilon: 1e-5,
    tie_word_embeddings: true,
  };
  return writeFolder(out, 2012, config, specs, tokenizerFixture);
}

/** Seed-OSS: Llama's layout with biased q/k/v (o_proj unbiased), an explicit head_dim. */
export function writeTinySeedOssFolder(out: string, tokenizerFixture: string): string {
  const specs = llamaModel((p) => llamaLayer(p, gatedMlp(p), { qkvBiased: true }), false);
  const config = {
    architectures: ['SeedOssForCausalLM'],
    model_type: 'seed_oss',
    head_dim: HEAD_DIM,
    rms_norm_eps: 1e-6,
    rope_theta: 10000000,
    hidden_act: 'silu',
    attention_bias: true,
    attention_out_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
  };
  return writeFolder(out, 2014, config, specs, tokenizerFixture);
}

/** Nemotron: LayerNorms of weight 1 + w (with biases), half of each head rotated, a ReLU² MLP, no projection biases. */
export function writeTinyNemotronFolder(out: string, tokenizerFixture: string): string {
  const specs: Spec[] = [
    ['model.embed_tokens.weight', [VOCAB, HIDDEN]],
    ...layers((p) => [
      ...layerNorm(`${p}.input_layernorm`),
      ...attention(p, 'o_proj', false),
      ...layerNorm(`${p}.post_attention_layernorm`),
      ...plainMlp(p),
    ]),
    ...layerNorm('model.norm'),
    ['lm_head.weight', [VOCAB, HIDDEN]],
  ];
  const config = {
    architectures: ['NemotronForCausalLM'],
    model_type: 'nemotron',
    head_dim: HEAD_DIM,
    norm_eps: 1e-5,
    rope_theta: 10000,
    partial_rotary_factor: 0.5,
    hidden_act: 'relu2',
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
  };
  return writeFolder(out, 2015, config, specs, tokenizerFixture);
}

/** Arcee: Llama's layout with a plain ReLU² MLP (up_proj, down_proj). */
export function writeTinyArceeFolder(out: string, tokenizerFixture: string): string {
  const specs = llamaModel((p) => llamaLayer(p, plainMlp(p)), false);
  const config = {
    architectures: ['ArceeForCausalLM'],
    model_type: 'arcee',
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: 'relu2',
    tie_word_embeddings: false,
  };
  return writeFolder(out, 2016, config, specs, tokenizerFixture);
}

/** ERNIE 4.5: Llama's layout, GPT-J-style RoPE, tied embeddings. */
export function writeTinyErnieFolder(out: string, tokenizerFixture: string): string {
  const specs = llamaModel((p) => llamaLayer(p, gatedMlp(p)), true);
  const config = {
    architectures: ['Ernie4_5ForCausalLM'],
    model_type: 'ernie4_5',
    head_dim: HEAD_DIM,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    hidden_act: 'silu',
    use_bias: false,
    tie_word_embeddings: true,
  };
  return writeFolder(out, 2017, config, specs, tokenizerFixture);
}

/** Phi-2: parallel attention and MLP on one LayerNorm, a rotary share of 0.5, multi-head attention, a biased LM head. */
export function writeTinyPhiFolder(out: string, tokenizerFixture: string): string {
  const specs: Spec[] = [
    ['model.embed_tokens.weight', [VOCAB, HIDDEN]],
    ...layers((p) => [
      ...layerNorm(`${p}.input_layernorm`),
      ...attention(p, 'dense', true, HEADS),
      [`${p}.mlp.fc1.weight`, [FF, HIDDEN]],
      [`${p}.mlp.fc1.bias`, [FF], 'bias'],
      [`${p}.mlp.fc2.weight`, [HIDDEN, FF]],
      [`${p}.mlp.fc2.bias`, [HIDDEN], 'bias'],
    ]),
    ...layerNorm('model.final_layernorm'),
    ['lm_head.weight', [VOCAB, HIDDEN]],
    ['lm_head.bias', [VOCAB], 'bias'],
  ];
  const config = {
    architectures: ['PhiForCausalLM'],
    model_type: 'phi',
    num_key_value_heads: HEADS,
    layer_norm_eps: 1e-5,
    rope_theta: 10000,
    partial_rotary_factor: 0.5,
    hidden_act: 'gelu_new',
    qk_layernorm: false,
    tie_word_embeddings: false,
  };
  return writeFolder(out, 2005, config, specs, tokenizerFixture);
}

/** tiny-llama's folder (at `tinyLlama`) as a Granite model, its four multipliers far from 1 and from what they replace. */
export function writeTinyLlamaAsGranite(out: string, tinyLlama: string): string {
  cpSync(tinyLlama, out, { recursive: true });
  const path = join(out, 'config.json');
  const config = JSON.parse(readFileSync(path, 'utf8'));
  Object.assign(config, {
    architectures: ['GraniteForCausalLM'],
    model_type: 'granite',
    embedding_multiplier: 6,
    residual_multiplier: 0.37,
    attention_multiplier: 0.11,
    logits_scaling: 3,
  });
  writeFileSync(path, JSON.stringify(config));
  return out;
}

/**
 * Command-R: parallel attention and SwiGLU MLP on one weight-only LayerNorm, GQA, scaled logits, tied embeddings;
 * (`generation` 2) Command R7B, with a window of 8 and RoPE on three layers of every four, the fourth full and unrotated.
 */
export function writeTinyCohereFolder(out: string, tokenizerFixture: string, generation: 1 | 2 = 1): string {
  const specs: Spec[] = [
    ['model.embed_tokens.weight', [VOCAB, HIDDEN]],
    ...layers((p) => [
      [`${p}.input_layernorm.weight`, [HIDDEN], 'norm'],
      ...attention(p, 'o_proj', false),
      ...gatedMlp(p),
    ]),
    ['model.norm.weight', [HIDDEN], 'norm'],
  ];
  const config = {
    architectures: [generation === 1 ? 'CohereForCausalLM' : 'Cohere2ForCausalLM'],
    model_type: generation === 1 ? 'cohere' : 'cohere2',
    layer_norm_eps: 1e-5,
    logit_scale: 0.3,
    rope_theta: 10000,
    hidden_act: 'silu',
    use_qk_norm: false,
    tie_word_embeddings: true,
    ...(generation === 2
      ? {
          sliding_window: 8,
          layer_types: ['sliding_attention', 'sliding_attention', 'sliding_attention', 'full_attention'],
        }
      : {}),
  };
  return writeFolder(out, 2005 + generation, config, specs, tokenizerFixture);
}

/** SmolLM3: Llama's layout, tied embeddings, and no rotary embedding in the fourth layer (`no_rope_layers`). */
export function writeTinySmollm3Folder(out: string, tokenizerFixture: string): string {
  const specs = llamaModel((p) => llamaLayer(p, gatedMlp(p)), true);
  const config = {
    architectures: ['SmolLM3ForCausalLM'],
    model_type: 'smollm3',
    rms_norm_eps: 1e-6,
    rope_theta: 5000,
    hidden_act: 'silu',
    no_rope_layers: [1, 1, 1, 0],
    no_rope_layer_interval: 4,
    use_sliding_window: false,
    sliding_window: null,
    tie_word_embeddings: true,
  };
  return writeFolder(out, 2007, config, specs, tokenizerFixture);
}

/**
 * EXAONE 4: OLMo 2's norms after attention and the MLP, q and k RMSNormed per head; plain (every layer full and
 * rotated, as the 1.2B model), or `hybrid` with 64 layers (the depth llama.cpp reads as hybrid): a window of 8 on three
 * layers of every four, the fourth full and unrotated.
 */
export function writeTinyExaone4Folder(out: string, tokenizerFixture: string, hybrid: boolean): string {
  const count = hybrid ? 64 : LAYERS;
  const specs: Spec[] = [
    ['model.embed_tokens.weight', [VOCAB, HIDDEN]],
    ...layers((p) => postNormLayer(p, HEAD_DIM, HEAD_DIM), count),
    ['model.norm.weight', [HIDDEN], 'norm'],
  ];
  const config = {
    architectures: ['Exaone4ForCausalLM'],
    model_type: 'exaone4',
    num_hidden_layers: count,
    rms_norm_eps: 1e-5,
    rope_theta: 1000000,
    hidden_act: 'silu',
    tie_word_embeddings: true,
    sliding_window: hybrid ? 8 : null,
    sliding_window_pattern: hybrid ? 4 : null,
  };
  return writeFolder(out, hybrid ? 2009 : 2008, config, specs, tokenizerFixture);
}

/**
 * GLM-4-0414 (`generation` 4): biased q/k/v (o_proj unbiased), gate and up packed, GPT-J-style RoPE on half of each
 * head, and each sublayer's output RMSNormed before its residual add; GLM-4-9B (`generation` 1, GlmForCausalLM): the
 * same without those output norms.
 */
export function writeTinyGlmFolder(out: string, tokenizerFixture: string, generation: 1 | 4 = 4): string {
  const sandwich = generation === 4;
  const mlp = (p: string): Spec[] => [
    [`${p}.mlp.gate_up_proj.weight`, [2 * FF, HIDDEN]],
    [`${p}.mlp.down_proj.weight`, [HIDDEN, FF]],
    ...(sandwich
      ? ([
          [`${p}.post_self_attn_layernorm.weight`, [HIDDEN], 'norm'],
          [`${p}.post_mlp_layernorm.weight`, [HIDDEN], 'norm'],
        ] satisfies Spec[])
      : []),
  ];
  const specs = llamaModel((p) => llamaLayer(p, mlp(p), { qkvBiased: true }), false);
  const config = {
    architectures: [sandwich ? 'Glm4ForCausalLM' : 'GlmForCausalLM'],
    model_type: sandwich ? 'glm4' : 'glm',
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    partial_rotary_factor: 0.5,
    head_dim: HEAD_DIM,
    attention_bias: true,
    hidden_act: 'silu',
    tie_word_embeddings: false,
  };
  return writeFolder(out, sandwich ? 2010 : 2013, config, specs, tokenizerFixture);
}

/** The mixture-of-experts families `writeTinyMoeFolder` writes; `qwen3moe-fused` stores the experts as transformers 5. */
export type TinyMoe =
  | 'olmoe'
  | 'mixtral'
  | 'qwen2moe'
  | 'qwen3moe'
  | 'qwen3moe-fused'
  | 'granitemoe'
  | 'granitemoeshared';

const EXPERTS = 4;
// Multiples of 32: every expert matrix's rows fit a 32-value block type, so `pagoda quantize` quantizes them all.
const EXPERT_FF = 64;
const SHARED_FF = 96;

/** A layer's experts in the family's layout: router, then each projection per expert or fused across experts. */
function moeBlock(p: string, family: TinyMoe): Spec[] {
  const perExpert = (block: string, [gate, up, down]: readonly string[]): Spec[] => [
    [`${p}.${block}.gate.weight`, [EXPERTS, HIDDEN]],
    ...Array.from({ length: EXPERTS }, (_, e): Spec[] => [
      [`${p}.${block}.experts.${e}.${gate}.weight`, [EXPERT_FF, HIDDEN]],
      [`${p}.${block}.experts.${e}.${up}.weight`, [EXPERT_FF, HIDDEN]],
      [`${p}.${block}.experts.${e}.${down}.weight`, [HIDDEN, EXPERT_FF]],
    ]).flat(),
  ];
  switch (family) {
    case 'mixtral':
      return perExpert('block_sparse_moe', ['w1', 'w3', 'w2']);
    case 'granitemoe':
      return [
        [`${p}.block_sparse_moe.router.layer.weight`, [EXPERTS, HIDDEN]],
        [`${p}.block_sparse_moe.input_linear.weight`, [EXPERTS, 2 * EXPERT_FF, HIDDEN]],
        [`${p}.block_sparse_moe.output_linear.weight`, [EXPERTS, HIDDEN, EXPERT_FF]],
      ];
    case 'granitemoeshared':
      return [
        ...moeBlock(p, 'granitemoe'),
        [`${p}.shared_mlp.input_linear.weight`, [2 * SHARED_FF, HIDDEN]],
        [`${p}.shared_mlp.output_linear.weight`, [HIDDEN, SHARED_FF]],
      ];
    case 'qwen3moe-fused':
      return [
        [`${p}.mlp.gate.weight`, [EXPERTS, HIDDEN]],
        [`${p}.mlp.experts.gate_up_proj`, [EXPERTS, 2 * EXPERT_FF, HIDDEN]],
        [`${p}.mlp.experts.down_proj`, [EXPERTS, HIDDEN, EXPERT_FF]],
      ];
    case 'qwen2moe':
      return [
        ...perExpert('mlp', ['gate_proj', 'up_proj', 'down_proj']),
        [`${p}.mlp.shared_expert.gate_proj.weight`, [SHARED_FF, HIDDEN]],
        [`${p}.mlp.shared_expert.up_proj.weight`, [SHARED_FF, HIDDEN]],
        [`${p}.mlp.shared_expert.down_proj.weight`, [HIDDEN, SHARED_FF]],
        [`${p}.mlp.shared_expert_gate.weight`, [1, HIDDEN]],
      ];
    default:
      return perExpert('mlp', ['gate_proj', 'up_proj', 'down_proj']);
  }
}

const QWEN3_MOE_CONFIG = {
  architectures: ['Qwen3MoeForCausalLM'],
  model_type: 'qwen3_moe',
  head_dim: HEAD_DIM,
  num_experts: EXPERTS,
  moe_intermediate_size: EXPERT_FF,
  norm_topk_prob: true,
};

const GRANITE_MOE_CONFIG = {
  architectures: ['GraniteMoeForCausalLM'],
  model_type: 'granitemoe',
  num_local_experts: EXPERTS,
  intermediate_size: EXPERT_FF,
  embedding_multiplier: 6,
  residual_multiplier: 0.37,
  attention_multiplier: 0.11,
  logits_scaling: 3,
};

const MOE_CONFIGS: Record<TinyMoe, Record<string, unknown>> = {
  // llama.cpp's olmoe sizes k_norm by the hidden size: multi-head attention, as the released model.
  olmoe: {
    architectures: ['OlmoeForCausalLM'],
    model_type: 'olmoe',
    num_key_value_heads: HEADS,
    num_experts: EXPERTS,
    intermediate_size: EXPERT_FF,
    norm_topk_prob: false,
    clip_qkv: null,
  },
  mixtral: {
    architectures: ['MixtralForCausalLM'],
    model_type: 'mixtral',
    num_local_experts: EXPERTS,
    intermediate_size: EXPERT_FF,
    sliding_window: null,
  },
  qwen2moe: {
    architectures: ['Qwen2MoeForCausalLM'],
    model_type: 'qwen2_moe',
    num_experts: EXPERTS,
    moe_intermediate_size: EXPERT_FF,
    shared_expert_intermediate_size: SHARED_FF,
    norm_topk_prob: false,
    use_sliding_window: false,
  },
  qwen3moe: QWEN3_MOE_CONFIG,
  'qwen3moe-fused': QWEN3_MOE_CONFIG,
  granitemoe: GRANITE_MOE_CONFIG,
  granitemoeshared: {
    ...GRANITE_MOE_CONFIG,
    architectures: ['GraniteMoeSharedForCausalLM'],
    model_type: 'granitemoeshared',
    shared_intermediate_size: SHARED_FF,
  },
};

/**
 * A mixture-of-experts model of `family`: Llama's pre-norm layers (OLMoE's q/k norms across heads, Qwen3-MoE's per
 * head, Qwen2-MoE's biased q/k/v), every MLP 4 experts of which 2 are routed to, in the family's tensor layout.
 */
export function writeTinyMoeFolder(out: string, family: TinyMoe, tokenizerFixture: string): string {
  const config = MOE_CONFIGS[family];
  const kvHeads = Number(config.num_key_value_heads ?? KV_HEADS);
  const qkNorm: Record<string, [number, number]> = {
    olmoe: [HEADS * HEAD_DIM, HEADS * HEAD_DIM],
    qwen3moe: [HEAD_DIM, HEAD_DIM],
    'qwen3moe-fused': [HEAD_DIM, HEAD_DIM],
  };
  const specs = llamaModel(
    (p) => llamaLayer(p, moeBlock(p, family), { qkvBiased: family === 'qwen2moe', kvHeads, qkNorm: qkNorm[family] }),
    false,
  );
  const common = {
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: 'silu',
    num_experts_per_tok: 2,
    tie_word_embeddings: false,
  };
  const seed = 2100 + Object.keys(MOE_CONFIGS).indexOf(family);
  return writeFolder(out, seed, { ...common, ...config }, specs, tokenizerFixture);
}
