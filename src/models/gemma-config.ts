import type { GatedActivation } from '../backend/backend.ts';
import type { RopeSpec } from '../backend/rope-spec.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import { UserError } from '../util/errors.ts';
import { everyNthFull, type LayerType, layerTypesOf, ropesByLayerType, ropeWith } from './layer-types.ts';

/** What a Gemma 1/2/3 config says beyond the Llama fields, resolved as transformers resolves it. */
export interface GemmaSettings {
  layerTypes: LayerType[];
  /** The attention scale is queryPreAttnScalar^-0.5 (Gemma 1: head_dim). */
  queryPreAttnScalar: number;
  /** 0: off. */
  attnSoftcap: number;
  finalSoftcap: number;
  activation: GatedActivation;
  /** The rotary embedding of each layer type (Gemma 3: a local base for sliding layers, the global one for full). */
  rope: Record<LayerType, RopeSpec>;
}

/** 1: pre-norm layers as Llama's; 2: sandwich norms and soft-capping; 3: Gemma 2's layout, q/k norms, two RoPE bases. */
export type GemmaGeneration = 1 | 2 | 3;

const positive = (v: unknown): number => (typeof v === 'number' && v > 0 ? v : 0);

/**
 * Which layers slide: `layer_types` where given, else `sliding_window_pattern` (every n-th layer full, Gemma 3's 4.x
 * configs), else transformers' Gemma 2 rule (even-indexed layers sliding, odd ones full); Gemma 1 never slides.
 */
function gemmaLayerTypes(cfg: ModelConfig, generation: GemmaGeneration, path: string): LayerType[] {
  return generation === 1 ? layerTypesOf(cfg, () => 'full_attention', path) : everyNthFull(cfg, 2, path);
}

/**
 * Gemma 3's two rotary embeddings: transformers 5 keys `rope_parameters` by layer type; 4.x configs give the global
 * `rope_theta` and `rope_scaling` (linear on the 4B-27B models) and the local `rope_local_base_freq`, unscaled.
 * Gemma 1 and 2 have one.
 */
function gemmaRopes(cfg: ModelConfig, generation: GemmaGeneration): Record<LayerType, RopeSpec> {
  const localBase = typeof cfg.raw.rope_local_base_freq === 'number' ? cfg.raw.rope_local_base_freq : 10000;
  return ropesByLayerType(cfg, (full) => (generation === 3 ? ropeWith(cfg, localBase, null) : full));
}

/**
 * The MLP's gate activation. Gemma 1 uses GELU's tanh form whatever `hidden_act` says ("gelu" in the first published
 * configs meant it), as transformers does; Gemma 2/3 name it in `hidden_activation`.
 */
function activationOf(cfg: ModelConfig, generation: GemmaGeneration, path: string): GatedActivation {
  const raw = cfg.raw;
  const name = (raw.hidden_activation ?? raw.hidden_act ?? 'gelu_pytorch_tanh') as string;
  if (generation === 1 && name === 'gelu') return 'gelu_tanh';
  if (name === 'gelu_pytorch_tanh' || name === 'gelu_new' || name === 'gelu_fast') return 'gelu_tanh';
  if (name === 'silu') return 'silu';
  throw new UserError(
    `${path}: hidden_activation "${name}" is not supported for ${cfg.architecture || cfg.modelType} (supported: gelu_pytorch_tanh, silu)`,
  );
}

export function gemmaSettings(cfg: ModelConfig, generation: GemmaGeneration, path = 'config.json'): GemmaSettings {
  const raw = cfg.raw;
  return {
    layerTypes: gemmaLayerTypes(cfg, generation, path),
    queryPreAttnScalar: positive(raw.query_pre_attn_scalar) || cfg.headDim,
    attnSoftcap: positive(raw.attn_logit_softcapping),
    finalSoftcap: positive(raw.final_logit_softcapping),
    activation: activationOf(cfg, generation, path),
    rope: gemmaRopes(cfg, generation),
  };
}
