import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';
import { MIXTRAL } from './moe.ts';

/** Mixtral: Mistral's attention with a mixture of experts in every layer (top-k weights always renormalised). */
export const mixtral: Architecture = {
  names: ['MixtralForCausalLM'],
  modelTypes: ['mixtral'],
  moe: MIXTRAL,
  build: (cfg, w, backend, options) => buildLlama({ qkvBias: false, moe: MIXTRAL }, cfg, w, backend, options),
};
