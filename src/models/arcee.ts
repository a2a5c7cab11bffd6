import { plainActivation } from './activation.ts';
import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/** Arcee (AFM-4.5B): Llama with a plain MLP, up_proj, ReLU² (`hidden_act`), down_proj. */
export const arcee: Architecture = {
  names: ['ArceeForCausalLM'],
  modelTypes: ['arcee'],
  kernelShape: { plainMlp: true },
  build: (cfg, w, backend, options) => {
    const plainMlp = plainActivation(cfg.hiddenAct, 'hidden_act', cfg.architecture);
    return buildLlama({ qkvBias: false, plainMlp }, cfg, w, backend, options);
  },
};
