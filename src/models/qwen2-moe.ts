import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';
import { QWEN2_MOE } from './moe.ts';

/** Qwen2-MoE (Qwen1.5-MoE, Qwen2-57B-A14B): Qwen2's attention (q/k/v bias unless `qkv_bias` is false), experts plus a gated shared expert. */
export const qwen2Moe: Architecture = {
  names: ['Qwen2MoeForCausalLM'],
  modelTypes: ['qwen2_moe'],
  moe: QWEN2_MOE,
  build: (cfg, w, backend, options) =>
    buildLlama({ qkvBias: cfg.raw.qkv_bias !== false, moe: QWEN2_MOE }, cfg, w, backend, options),
};
