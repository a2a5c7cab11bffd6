import type { Architecture } from './architecture.ts';
import { buildLlama } from './llama.ts';

/**
 * Qwen2: Llama with biases on the q/k/v projections. Also Qwen2-VL's and Qwen2.5-VL's language model, for text alone
 * (images are refused at the API; its M-RoPE is the plain rotation when every position is a text token's).
 */
export const qwen2: Architecture = {
  names: ['Qwen2ForCausalLM', 'Qwen2VLForConditionalGeneration', 'Qwen2_5_VLForConditionalGeneration'],
  modelTypes: ['qwen2', 'qwen2_vl', 'qwen2_5_vl'],
  tensorParallel: true,
  build: (cfg, w, backend, options) => buildLlama({ qkvBias: true }, cfg, w, backend, options),
};
