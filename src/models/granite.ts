import { graniteMultipliers } from '../loader/granite-config.ts';
import { UserError } from '../util/errors.ts';
import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';
import { GRANITE_MOE, moeConfigOf } from './moe.ts';

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

/**
 * Granite 4.0's transformer-only models (granite-4.0-micro): GraniteMoeHybridForCausalLM with every layer attention
 * and RoPE. Granite's multipliers; each MLP the dense `shared_mlp` (gate and up fused), or, with experts, Granite MoE's
 * experts beside it as a shared expert. The hybrid models' Mamba-2 layers are refused.
 */
export const graniteMoeHybrid: Architecture = {
  names: ['GraniteMoeHybridForCausalLM'],
  modelTypes: ['granitemoehybrid'],
  moe: GRANITE_MOE,
  build: (cfg, w, backend, options) => {
    const types = cfg.raw.layer_types;
    if (Array.isArray(types) && types.some((t) => t !== 'attention')) {
      throw new UserError(
        `config.json: layer_types has ${types.filter((t) => t !== 'attention').length} Mamba-2 layers, which are not supported (granite-4.0-micro's every-layer "attention" is)`,
      );
    }
    if (cfg.raw.position_embedding_type !== 'rope') {
      throw new UserError(
        `config.json: position_embedding_type ${JSON.stringify(cfg.raw.position_embedding_type)} is not supported for ${cfg.architecture} (expected "rope")`,
      );
    }
    const multipliers = graniteMultipliers(cfg);
    // transformers' default without the key is 8 experts, as Granite MoE's.
    if (moeConfigOf(GRANITE_MOE, cfg).numExperts > 0) {
      return buildLlama({ qkvBias: false, moe: GRANITE_MOE, multipliers }, cfg, w, backend, options);
    }
    const fusedMlp = { gateUp: 'shared_mlp.input_linear', down: 'shared_mlp.output_linear' };
    const width = cfg.raw.shared_intermediate_size;
    if (typeof width !== 'number' || !Number.isInteger(width) || width <= 0) {
      throw new UserError(
        `config.json: "shared_intermediate_size" must be a positive integer, got ${JSON.stringify(width)}`,
      );
    }
    const dense = { ...cfg, intermediateSize: width };
    return buildLlama({ qkvBias: false, multipliers, fusedMlp }, dense, w, backend, options);
  },
};
