/** A fixture's golden file, run with the engine's max-model-len where the model's rope depends on it. */
export interface GoldenCase {
  name: string;
  file: string;
  maxModelLen?: number;
}

/** The fixtures with goldens, checked on the CPU (test/models/golden.test.ts) and on CUDA (test/gpu/cuda-models). */
export const GOLDEN_MODELS = [
  'stories260K',
  'tiny-llama',
  'tiny-qwen2',
  'tiny-qwen3',
  'tiny-mistral',
  'tiny-gpt2',
  'tiny-qwen3-moe',
  'tiny-gemma2',
  'tiny-gemma3',
  'tiny-granite',
  'tiny-olmo2',
  'tiny-olmo3',
  'tiny-starcoder2',
  'tiny-phi',
  'tiny-cohere',
  'tiny-cohere2',
  'tiny-smollm3',
  'tiny-exaone4',
  'tiny-glm4',
  'tiny-granitemoe',
];

/** The fixtures with goldens that convert to GGUF, checked against their goldens and against llama.cpp. */
export const GGUF_FIXTURES = [
  'tiny-llama',
  'tiny-qwen2',
  'tiny-qwen3',
  'tiny-mistral',
  'tiny-gpt2',
  'tiny-llama-256',
  'tiny-qwen2-256',
];

export const GOLDEN_CASES: readonly GoldenCase[] = [
  ...GOLDEN_MODELS.map((name) => ({ name, file: 'golden.json' })),
  // LongRoPE: golden.json stays within the 64 trained positions (short factors); golden_long.json has the long ones,
  // which the default max-model-len (max_position_embeddings, 512) selects.
  { name: 'tiny-phi3-longrope', file: 'golden.json', maxModelLen: 64 },
  { name: 'tiny-phi3-longrope', file: 'golden_long.json' },
];
