import { modelFixture } from './fixtures.ts';

/** A fixture's golden file, run with the engine's max-model-len where the model's rope depends on it. */
export interface GoldenCase {
  name: string;
  file: string;
  maxModelLen?: number;
}

/**
 * The fixtures with goldens, checked on the CPU (test/models/golden.test.ts) and on CUDA (test/gpu/cuda-models), with
 * GENERATORS' (committed once generated).
 */
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

/** Fixtures made by a generator that needs torch (run on the GPU machine): until then their tests skip saying how. */
export const GENERATORS: Record<string, string> = {
  'tiny-qwen2-moe': 'python3 test/fixtures/generate-moe.py',
  'tiny-mixtral': 'python3 test/fixtures/generate-moe.py',
  'tiny-granite': 'python3 test/fixtures/generate-families.py',
  'tiny-olmo2': 'python3 test/fixtures/generate-families.py',
  'tiny-olmo3': 'python3 test/fixtures/generate-families.py',
  'tiny-starcoder2': 'python3 test/fixtures/generate-families.py',
  'tiny-phi': 'python3 test/fixtures/generate-families.py',
  'tiny-cohere': 'python3 test/fixtures/generate-families.py',
  'tiny-cohere2': 'python3 test/fixtures/generate-families.py',
  'tiny-smollm3': 'python3 test/fixtures/generate-families.py',
  'tiny-exaone4': 'python3 test/fixtures/generate-families.py',
  'tiny-glm4': 'python3 test/fixtures/generate-families.py',
  'tiny-granitemoe': 'python3 test/fixtures/generate-families.py',
  'tiny-granitemoeshared': 'python3 test/fixtures/generate-families.py',
  'tiny-olmoe': 'python3 test/fixtures/generate-families.py',
  'tiny-stablelm': 'python3 test/fixtures/generate-families.py',
  'tiny-gpt-bigcode': 'python3 test/fixtures/generate-families.py',
  'tiny-glm': 'python3 test/fixtures/generate-families.py',
  'tiny-seed-oss': 'python3 test/fixtures/generate-families.py',
  'tiny-nemotron': 'python3 test/fixtures/generate-families.py',
  'tiny-arcee': 'python3 test/fixtures/generate-families.py',
  'tiny-ernie': 'python3 test/fixtures/generate-families.py',
};

export const GOLDEN_CASES: readonly GoldenCase[] = [
  ...[...new Set([...GOLDEN_MODELS, ...Object.keys(GENERATORS)])].map((name) => ({ name, file: 'golden.json' })),
  // LongRoPE: golden.json stays within the 64 trained positions (short factors); golden_long.json has the long ones,
  // which the default max-model-len (max_position_embeddings, 512) selects.
  { name: 'tiny-phi3-longrope', file: 'golden.json', maxModelLen: 64 },
  { name: 'tiny-phi3-longrope', file: 'golden_long.json' },
];

/** A golden case's fixture, or why its tests skip: a generated one not generated yet names its generator. */
export function goldenFixture(name: string): ReturnType<typeof modelFixture> {
  const fixture = modelFixture(name);
  const generator = GENERATORS[name];
  if (!fixture.skip || !generator) return fixture;
  return {
    path: '',
    skip: `fixture not generated yet: run \`${generator}\` where torch and transformers are installed`,
  };
}
