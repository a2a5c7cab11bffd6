import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/**
 * GLM-4 (the 0414 models): Llama with biased q/k/v (no o_proj bias, though the config says `attention_bias`), gate and
 * up packed, GPT-J-style RoPE on half of each head, and each sublayer's output RMSNormed before its residual add.
 */
export const glm4: Architecture = {
  names: ['Glm4ForCausalLM'],
  modelTypes: ['glm4'],
  tensorParallel: true,
  build: (cfg, w, backend, options) =>
    buildLlama(
      { qkvBias: true, oBias: false, fusedGateUp: true, ropeStyle: 'gptj', sandwichNorms: true },
      cfg,
      w,
      backend,
      options,
    ),
};
