import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/** Qwen2: Llama with biases on the q/k/v projections. */
export const qwen2: Architecture = {
  names: ['Qwen2ForCausalLM'],
  modelTypes: ['qwen2'],
  tensorParallel: true,
  build: (cfg, w, backend, options) => buildLlama({ qkvBias: true, qkNorm: false }, cfg, w, backend, options),
};
