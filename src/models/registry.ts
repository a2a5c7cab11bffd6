import type { ModelConfig } from '../loader/hf-config.ts';
import { UserError } from '../util/errors.ts';
import { arcee } from './arcee.ts';
import type { Architecture } from './architecture.ts';
import { ernie45 } from './ernie.ts';
import { exaone } from './exaone.ts';
import { gemma, gemma2, gemma3 } from './gemma.ts';
import { glm, glm4 } from './glm4.ts';
import { gpt2, gptBigCode } from './gpt2.ts';
import { granite, graniteMoe, graniteMoeHybrid } from './granite.ts';
import { cohere, cohere2, nemotron, phi, stablelm, starcoder2 } from './layernorm-decoder.ts';
import { llama } from './llama.ts';
import { mistral } from './mistral.ts';
import { mixtral } from './mixtral.ts';
import { exaone4, olmo2, olmo3 } from './olmo.ts';
import { olmoe } from './olmoe.ts';
import { phi3 } from './phi3.ts';
import { qwen2 } from './qwen2.ts';
import { qwen2Moe } from './qwen2-moe.ts';
import { qwen3 } from './qwen3.ts';
import { qwen3Moe } from './qwen3-moe.ts';
import { seedOss } from './seed-oss.ts';
import { smollm3 } from './smollm3.ts';

export const ARCHITECTURES: readonly Architecture[] = [
  llama,
  mistral,
  qwen2,
  qwen3,
  phi3,
  qwen3Moe,
  qwen2Moe,
  mixtral,
  gemma,
  gemma2,
  gemma3,
  granite,
  graniteMoe,
  graniteMoeHybrid,
  smollm3,
  seedOss,
  arcee,
  ernie45,
  exaone,
  glm,
  glm4,
  olmo2,
  olmo3,
  exaone4,
  olmoe,
  starcoder2,
  stablelm,
  nemotron,
  phi,
  cohere,
  cohere2,
  gptBigCode,
  gpt2,
];

/** The architecture for a config: by `architectures[0]`, else by `model_type`. */
export function pickArchitecture(cfg: ModelConfig, configPath: string): Architecture {
  const byName = cfg.architecture && ARCHITECTURES.find((a) => a.names.includes(cfg.architecture));
  if (byName) return byName;
  const byType = !cfg.architecture && ARCHITECTURES.find((a) => a.modelTypes.includes(cfg.modelType));
  if (byType) return byType;
  const supported = ARCHITECTURES.flatMap((a) => a.names).join(', ');
  const what = cfg.architecture ? `architecture "${cfg.architecture}"` : `model_type "${cfg.modelType}"`;
  throw new UserError(`${configPath}: ${what} is not supported (supported: ${supported})`);
}
