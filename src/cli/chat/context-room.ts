import type { SamplingParams } from '../../engine/types.ts';
import { UserError } from '../../util/errors.ts';

/**
 * The answer's length as pagoda's Ollama API sets it for the same request: num_predict (a flag, `/set parameter` or
 * the model's PARAMETER), else `fallback` when given, capped to the room the prompt leaves in the context. A prompt
 * that leaves no room is refused, as the API refuses it, in one line naming num_ctx.
 */
export function fitToContext(
  params: Partial<SamplingParams>,
  modelDefaults: Partial<SamplingParams>,
  promptTokens: number,
  contextLength: number,
  fallback?: number,
): Partial<SamplingParams> {
  if (promptTokens >= contextLength) {
    throw new UserError(
      `the prompt is ${promptTokens} tokens, but the model's context length (num_ctx) is ${contextLength} tokens`,
      'prompt',
    );
  }
  const asked = params.maxTokens ?? modelDefaults.maxTokens ?? fallback;
  if (asked === undefined) return params;
  return { ...params, maxTokens: Math.min(asked, contextLength - promptTokens) };
}
