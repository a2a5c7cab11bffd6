import type { RopeSpec } from '../backend/rope-spec.ts';
import type { ModelConfig, RopeScaling } from '../loader/hf-config.ts';
import { UserError } from '../util/errors.ts';
import { ropeSpecFromConfig } from './rope.ts';

/** The two kinds of attention layer the hybrid models (Gemma 2/3, OLMo 3) interleave. */
export type LayerType = 'sliding_attention' | 'full_attention';

/** Each layer's type: `layer_types` where the config lists them (checked), else the family's rule. */
export function layerTypesOf(cfg: ModelConfig, rule: (layer: number) => LayerType, path: string): LayerType[] {
  const listed = cfg.raw.layer_types;
  if (!Array.isArray(listed)) return Array.from({ length: cfg.numLayers }, (_, i) => rule(i));
  if (listed.length !== cfg.numLayers || listed.some((t) => t !== 'sliding_attention' && t !== 'full_attention')) {
    throw new UserError(
      `${path}: "layer_types" must list "sliding_attention" or "full_attention" for each of the ${cfg.numLayers} layers`,
    );
  }
  return listed as LayerType[];
}

/**
 * Each layer's type by transformers' `sliding_window_pattern` rule (every n-th layer full, the others sliding;
 * `every` where the config gives no number, 0: none slides), unless the config lists `layer_types`.
 */
export function everyNthFull(cfg: ModelConfig, every: number, path = 'config.json'): LayerType[] {
  const given = cfg.raw.sliding_window_pattern ?? cfg.raw._sliding_window_pattern;
  const n = typeof given === 'number' ? given : every;
  return layerTypesOf(cfg, (i) => (n > 0 && (i + 1) % n !== 0 ? 'sliding_attention' : 'full_attention'), path);
}

/** A rotary embedding of base `theta` with rope_parameters / rope_scaling `scaling` (null or type default: none). */
export function ropeWith(cfg: ModelConfig, theta: number, scaling: Record<string, unknown> | null): RopeSpec {
  const type = (scaling?.rope_type ?? scaling?.type ?? 'default') as string;
  const ropeScaling: RopeScaling | null = scaling && type !== 'default' ? { ...scaling, type } : null;
  return ropeSpecFromConfig({ ...cfg, ropeTheta: theta, ropeScaling });
}

/**
 * The rotary embedding of each layer type: transformers 5 keys `rope_parameters` by layer type; a 4.x config gives
 * the full layers' (`rope_theta`, `rope_scaling`), and the family says what its sliding layers use (given the full one).
 */
export function ropesByLayerType(cfg: ModelConfig, sliding: (full: RopeSpec) => RopeSpec): Record<LayerType, RopeSpec> {
  const params = cfg.raw.rope_parameters as Record<string, Record<string, unknown> | undefined> | undefined;
  if (params?.full_attention && params.sliding_attention) {
    const spec = (p: Record<string, unknown>) =>
      ropeWith(cfg, (p.rope_theta as number | undefined) ?? cfg.ropeTheta, p);
    return { full_attention: spec(params.full_attention), sliding_attention: spec(params.sliding_attention) };
  }
  const full = ropeSpecFromConfig(cfg);
  return { full_attention: full, sliding_attention: sliding(full) };
}
