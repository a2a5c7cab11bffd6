import { graniteMultipliers } from '../loader/granite-config.ts';
import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';
import { GRANITE_MOE } from './moe.ts';

/** IBM Granite 3.x: Llama with four multipliers (loader/granite-config.ts). */
export const granite: Architecture = {
  names: ['GraniteForCausalLM'],
  modelTypes: ['granite'],
  tensorParallel: true,
  build: (cfg, w, backend, options) =>
    buildLlama({ qkvBias: false, multipliers: graniteMultipliers(cfg) }, cfg, w, backend, options),
};

/**
 * Granite 3 MoE (granite3-moe, granite3.1-moe) and GraniteMoeShared: Granite's multipliers, every MLP a mixture of
 * experts, with an ungated shared expert where `shared_intermediate_size` says (moe.ts reads its checkpoints' fused
 * experts and its GGUFs' stacked ones).
 */
export const graniteMoe: Architecture = {
  names: ['GraniteMoeForCausalLM', 'GraniteMoeSharedForCausalLM'],
  modelTypes: ['granitemoe', 'granitemoeshared'],
  moe: GRANITE_MOE,
  build: (cfg, w, backend, options) => {
    const opts = { qkvBias: false, moe: GRANITE_MOE, multipliers: graniteMultipliers(cfg) };
    return buildLlama(opts, cfg, w, backend, options);
  },
};
