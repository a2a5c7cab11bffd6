import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/**
 * Phi-3, Phi-3.5, Phi-4 and Phi-4-mini: Llama with q/k/v and gate/up stored fused; partial rotary, LongRoPE and the
 * sliding window come from the config.
 */
export const phi3: Architecture = {
  names: ['Phi3ForCausalLM'],
  modelTypes: ['phi3'],
  tensorParallel: true,
  build: (cfg, w, backend, options) => buildLlama({ qkvBias: false, fusedProjections: true }, cfg, w, backend, options),
};
