import { UserError } from '../util/errors.ts';
import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/** ERNIE 4.5 (the dense 0.3B): Llama with GPT-J-style RoPE over each whole head. */
export const ernie45: Architecture = {
  names: ['Ernie4_5ForCausalLM'],
  modelTypes: ['ernie4_5'],
  tensorParallel: true,
  build: (cfg, w, backend, options) => {
    // No released checkpoint biases its projections (llama.cpp's ernie4_5 reads none on q/k/v or the MLP).
    if (cfg.raw.use_bias === true) {
      throw new UserError(`config.json: use_bias = true is not supported for ${cfg.architecture}`);
    }
    return buildLlama({ qkvBias: false, ropeStyle: 'gptj' }, cfg, w, backend, options);
  },
};
