import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/**
 * Seed-OSS (ByteDance-Seed/Seed-OSS-36B): Llama with q/k/v biased as `attention_bias` says, o_proj as
 * `attention_out_bias` does.
 */
export const seedOss: Architecture = {
  names: ['SeedOssForCausalLM'],
  modelTypes: ['seed_oss'],
  tensorParallel: true,
  build: (cfg, w, backend, options) =>
    buildLlama({ qkvBias: false, oBias: cfg.raw.attention_out_bias === true }, cfg, w, backend, options),
};
