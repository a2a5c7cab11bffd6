import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/** Mistral is Llama with an optional sliding window, which the config carries. */
export const mistral: Architecture = {
  names: ['MistralForCausalLM'],
  modelTypes: ['mistral'],
  tensorParallel: true,
  build: (cfg, w, backend, options) => buildLlama({ qkvBias: false }, cfg, w, backend, options),
};
