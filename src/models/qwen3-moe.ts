import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';
import { QWEN_MOE } from './moe.ts';

/** Qwen3-MoE: Qwen3's attention (q/k RMSNorm) with mixture-of-experts MLPs. */
export const qwen3Moe: Architecture = {
  names: ['Qwen3MoeForCausalLM'],
  modelTypes: ['qwen3_moe'],
  kernelShape: { qkNorm: true },
  moe: QWEN_MOE,
  build: (cfg, w, backend, options) =>
    buildLlama({ qkvBias: false, qkNorm: 'per-head', moe: QWEN_MOE }, cfg, w, backend, options),
};
