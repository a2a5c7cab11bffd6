import { graniteMultipliers } from '../loader/granite-config.ts';
import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/** IBM Granite 3.x: Llama with four multipliers (loader/granite-config.ts). */
export const granite: Architecture = {
  names: ['GraniteForCausalLM'],
  modelTypes: ['granite'],
  tensorParallel: true,
  build: (cfg, w, backend, options) =>
    buildLlama({ qkvBias: false, qkNorm: false, multipliers: graniteMultipliers(cfg) }, cfg, w, backend, options),
};
