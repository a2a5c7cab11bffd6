import { UserError } from '../util/errors.ts';
import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';
import { OLMOE } from './moe.ts';

/**
 * OLMoE (allenai/OLMoE-1B-7B): Llama's pre-norm layers, q and k RMSNormed across all heads before RoPE, every MLP a
 * mixture of experts routed as Qwen's (top-k of a softmax, renormalised when `norm_topk_prob` says so).
 */
export const olmoe: Architecture = {
  names: ['OlmoeForCausalLM'],
  modelTypes: ['olmoe'],
  kernelShape: { qkNorm: true },
  moe: OLMOE,
  build: (cfg, w, backend, options) => {
    // transformers clamps q, k and v to ±clip_qkv when it is set; no released checkpoint sets it.
    if (cfg.raw.clip_qkv != null) {
      throw new UserError(
        `config.json: "clip_qkv" is ${JSON.stringify(cfg.raw.clip_qkv)}, expected null (not supported)`,
      );
    }
    return buildLlama({ qkvBias: false, qkNorm: 'across-heads', moe: OLMOE }, cfg, w, backend, options);
  },
};
