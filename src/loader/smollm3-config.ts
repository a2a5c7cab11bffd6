import { UserError } from '../util/errors.ts';
import type { ModelConfig } from './hf-config.ts';

/**
 * Which layers rotate q and k: `no_rope_layers` (1 rotates, 0 leaves them as they are) where the config lists it,
 * else SmolLM3Config's rule, every `no_rope_layer_interval`-th layer (4 by default) unrotated.
 */
export function smollm3RotatedLayers(cfg: ModelConfig): boolean[] {
  const listed = cfg.raw.no_rope_layers;
  if (listed === undefined || listed === null) {
    const interval = typeof cfg.raw.no_rope_layer_interval === 'number' ? cfg.raw.no_rope_layer_interval : 4;
    return Array.from({ length: cfg.numLayers }, (_, i) => (i + 1) % interval !== 0);
  }
  if (!Array.isArray(listed) || listed.length < cfg.numLayers || listed.some((v) => v !== 0 && v !== 1)) {
    throw new UserError(`config.json: "no_rope_layers" must list 1 or 0 for each of the ${cfg.numLayers} layers`);
  }
  return listed.slice(0, cfg.numLayers).map((v) => v === 1);
}
