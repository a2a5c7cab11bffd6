import type { Architecture } from './architecture.ts';
import { buildLlama, type LlamaOptions } from './llama.ts';

/**
 * GLM's Llama: biased q/k/v (no o_proj bias, though the config says `attention_bias`), gate and up packed, GPT-J-style
 * RoPE on half of each head.
 */
const GLM: LlamaOptions = {
  qkvBias: true,
  oBias: false,
  fusedMlp: { gateUp: 'mlp.gate_up_proj', down: 'mlp.down_proj' },
  ropeStyle: 'gptj',
};

/** GLM-4-9B as transformers runs it (and llama.cpp's chatglm files, GLM-4-9B's and CodeGeeX4's, q/k/v fused or not). */
export const glm: Architecture = {
  names: ['GlmForCausalLM'],
  modelTypes: ['glm'],
  tensorParallel: true,
  build: (cfg, w, backend, options) => buildLlama(GLM, cfg, w, backend, options),
};

/** GLM-4 (the 0414 models): GLM with each sublayer's output RMSNormed before its residual add. */
export const glm4: Architecture = {
  names: ['Glm4ForCausalLM'],
  modelTypes: ['glm4'],
  tensorParallel: true,
  build: (cfg, w, backend, options) => buildLlama({ ...GLM, sandwichNorms: true }, cfg, w, backend, options),
};
