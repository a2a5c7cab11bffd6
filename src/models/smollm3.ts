import { smollm3RotatedLayers } from '../loader/smollm3-config.ts';
import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/** SmolLM3: Llama with no rotary embedding in every fourth layer (NoPE). */
export const smollm3: Architecture = {
  names: ['SmolLM3ForCausalLM'],
  modelTypes: ['smollm3'],
  tensorParallel: true,
  build: (cfg, w, backend, options) =>
    buildLlama({ qkvBias: false, rotatedLayers: smollm3RotatedLayers }, cfg, w, backend, options),
};
