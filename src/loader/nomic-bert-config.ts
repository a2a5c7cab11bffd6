import { UserError } from '../util/errors.ts';

/**
 * NomicBertConfig's defaults (nomic-ai's remote code, a GPT2Config) for the keys pagoda reads, so that a file leaving
 * one out means what it means to the remote code.
 */
const DEFAULTS = {
  n_embd: 768,
  n_head: 12,
  n_layer: 12,
  layer_norm_epsilon: 1e-5,
  activation_function: 'gelu_new',
  rotary_emb_base: 1000,
  rotary_emb_fraction: 0,
  rotary_emb_interleaved: false,
  rotary_emb_scale_base: null,
  prenorm: false,
  use_rms_norm: false,
  parallel_block: false,
  mlp_fc1_bias: true,
  mlp_fc2_bias: true,
  max_trained_positions: 2048,
  moe_every_n_layers: 0,
};

/** The settings pagoda's nomic-bert (models/bert.ts, as llama.cpp's) computes, each with what it means otherwise. */
const REQUIRED: [key: keyof typeof DEFAULTS, value: unknown, otherwise: string][] = [
  ['moe_every_n_layers', 0, 'no mixture-of-experts layers; nomic-embed-text-v2-moe is not supported'],
  ['activation_function', 'swiglu', 'the MLP is a SwiGLU'],
  ['rotary_emb_fraction', 1, 'rotary positions over the whole head'],
  ['rotary_emb_interleaved', false, "NeoX pairing (each half's dims with the other half's)"],
  ['rotary_emb_scale_base', null, 'plain rotary positions, without xPos scaling'],
  ['prenorm', false, 'the norms follow each block (post-norm)'],
  ['use_rms_norm', false, 'LayerNorm'],
  ['parallel_block', false, 'attention then MLP, in sequence'],
  ['mlp_fc1_bias', false, 'the MLP without biases'],
  ['mlp_fc2_bias', false, 'the MLP without biases'],
];

/**
 * A NomicBertConfig config.json (nomic-embed-text v1 / v1.5 folders) with the transformers keys parseModelConfig
 * reads, as gguf/config.ts writes them for llama.cpp's `nomic-bert`; a setting the forward does not compute is refused
 * in one line naming the field. Positions stop at max_trained_positions as llama.cpp's converter and vLLM stop them
 * (n_positions 8192 is the rotary extension, and rotary_scaling_factor's dynamic NTK only acts beyond it). Other
 * configs, and those gguf/config.ts wrote (with `hidden_size`), come back as they are.
 */
export function withNomicBertKeys(raw: Record<string, unknown>, path: string): Record<string, unknown> {
  if (raw.model_type !== 'nomic_bert' || raw.hidden_size !== undefined) return raw;
  const c: Record<string, unknown> = { ...DEFAULTS, ...raw };
  for (const [key, value, otherwise] of REQUIRED) {
    if (c[key] !== value) {
      throw new UserError(
        `${path}: ${key} ${JSON.stringify(c[key])} is not supported for nomic_bert (expected ${JSON.stringify(value)}: ${otherwise})`,
      );
    }
  }
  // GPT2Config saves max_position_embeddings as n_positions; either may name it, 1024 where neither does.
  const declared = Number(c.n_positions ?? c.max_position_embeddings ?? 1024);
  const positions = Math.min(declared, Number(c.max_trained_positions));
  return {
    ...c,
    hidden_size: c.n_embd,
    num_attention_heads: c.n_head,
    num_hidden_layers: c.n_layer,
    intermediate_size: c.n_inner ?? 4 * Number(c.n_embd),
    max_position_embeddings: positions,
    rope_theta: c.rotary_emb_base,
    partial_rotary_factor: 1,
    hidden_act: c.activation_function,
  };
}
