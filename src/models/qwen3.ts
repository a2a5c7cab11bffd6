import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/**
 * Qwen3: Llama with per-head RMSNorm on q and k (and an explicit head_dim, which the config carries). Also Qwen3-VL's
 * language model, for text alone (as Qwen2-VL's in qwen2.ts).
 */
export const qwen3: Architecture = {
  names: ['Qwen3ForCausalLM', 'Qwen3VLForConditionalGeneration'],
  modelTypes: ['qwen3', 'qwen3_vl'],
  kernelShape: { qkNorm: true },
  tensorParallel: true,
  build: (cfg, w, backend, options) => buildLlama({ qkvBias: false, qkNorm: 'per-head' }, cfg, w, backend, options),
};
