import { UserError } from '../util/errors.ts';
import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/**
 * Mistral is Llama with an optional sliding window, which the config carries. Also Mistral 3's language model
 * (Mistral Small 3.1 / 3.2, Magistral, Devstral checkpoints as Mistral3ForConditionalGeneration), for text alone.
 */
export const mistral: Architecture = {
  names: ['MistralForCausalLM', 'Mistral3ForConditionalGeneration'],
  modelTypes: ['mistral', 'mistral3'],
  tensorParallel: true,
  build: (cfg, w, backend, options) => {
    // Ministral 3's and Mistral Large 3's attention temperature (Llama 4's scaling by position) is not implemented.
    const scaling = (cfg.raw.rope_parameters ?? cfg.raw.rope_scaling) as Record<string, unknown> | null | undefined;
    if (scaling?.llama_4_scaling_beta != null) {
      throw new UserError(`config.json: rope llama_4_scaling_beta (attention temperature scaling) is not supported`);
    }
    return buildLlama({ qkvBias: false }, cfg, w, backend, options);
  },
};
