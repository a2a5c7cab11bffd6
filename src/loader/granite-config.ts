import { UserError } from '../util/errors.ts';
import type { ModelConfig } from './hf-config.ts';

/**
 * Granite's four multipliers: the embeddings are scaled, each residual branch (attention and MLP output) is scaled
 * before it is added, attention scores are scaled by `attention` instead of 1/sqrt(head_dim), and the logits are
 * divided by `logitsDivisor`.
 */
export interface GraniteMultipliers {
  embedding: number;
  residual: number;
  attention: number;
  logitsDivisor: number;
}

/** Granite's multipliers from its config, each a positive number (transformers' default, 1, where one is absent). */
export function graniteMultipliers(cfg: ModelConfig): GraniteMultipliers {
  const read = (key: string): number => {
    const v = cfg.raw[key] ?? 1;
    if (typeof v !== 'number' || !(v > 0)) {
      throw new UserError(`config.json: "${key}" must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  return {
    embedding: read('embedding_multiplier'),
    residual: read('residual_multiplier'),
    attention: read('attention_multiplier'),
    logitsDivisor: read('logits_scaling'),
  };
}
