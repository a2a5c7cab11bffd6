import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/** Qwen3: Llama with per-head RMSNorm on q and k (and an explicit head_dim, which the config carries). */
export const qwen3: Architecture = {
  names: ['Qwen3ForCausalLM'],
  modelTypes: ['qwen3'],
  tensorParallel: true,
  build: (cfg, w, backend, options) => buildLlama({ qkvBias: false, qkNorm: true }, cfg, w, backend, options),
};
