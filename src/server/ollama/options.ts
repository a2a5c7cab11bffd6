import { checkContextLength } from '../../engine/admission.ts';
import type { SamplingParams } from '../../engine/types.ts';
import { samplingFrom } from '../../primitives/sampling-names.ts';
import { templateThinks } from '../chat-output.ts';
import { parseDuration } from '../config.ts';
import { badRequest } from '../errors.ts';
import { type Admitted, refused } from '../generation.ts';
import type { Options } from './schemas.ts';

/**
 * The context a request may use: num_ctx when given, at most what the loaded engine holds (Ollama would reload the
 * model at the larger length; the model here keeps the length it was loaded with, and a prompt past it is refused).
 */
function contextLimit(opts: Options | null | undefined, engineContext: number): number {
  return Math.min(opts?.num_ctx ?? engineContext, engineContext);
}

/** Ollama's default repeat_last_n. */
export const OLLAMA_REPEAT_LAST_N = 64;

/**
 * Ollama options in the engine's terms. num_predict -1/-2/absent = until the context is full; a larger one is
 * clamped to the room the prompt leaves, as Ollama does (at least 1, so that the engine refuses a prompt with no room).
 */
export function samplingFromOptions(
  opts: Options | null | undefined,
  promptTokens: number,
  engineContext: number,
  logprobs: number | null,
): Partial<SamplingParams> {
  const context = contextLimit(opts, engineContext);
  if (context < engineContext) {
    // The engine checks its own length; a smaller num_ctx bounds this request only.
    try {
      checkContextLength(promptTokens, undefined, context);
    } catch (err) {
      throw refused(err);
    }
  }
  if (opts?.num_predict === 0)
    throw badRequest('options.num_predict: 0 would generate nothing (use -1 for no limit)', 'options.num_predict');
  // Ollama's penalties look back over its default window unless the request says otherwise.
  const p: Partial<SamplingParams> = {
    repeatLastN: OLLAMA_REPEAT_LAST_N,
    ...samplingFrom('ollama', opts ?? {}),
    logprobs,
  };
  const room = Math.max(1, context - promptTokens);
  // With no limit, a num_ctx below the engine's length still bounds the answer.
  if (p.maxTokens !== undefined) p.maxTokens = Math.min(p.maxTokens, room);
  else if (context < engineContext) p.maxTokens = room;
  return p;
}

/** keep_alive of a request in milliseconds (-1 = forever), or undefined for the server default. */
export function keepAliveMs(value: string | number | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === null) throw badRequest(`keep_alive: "${value}" is not a duration (e.g. "5m", 300, -1)`, 'keep_alive');
  return ms;
}

/**
 * A stored model's PARAMETERs under a request's options, as Ollama layers them (the request wins). num_ctx is left
 * out: the model was loaded with it already.
 */
export function withStoredParameters(
  opts: Options | null | undefined,
  stored: Record<string, unknown> | undefined,
): Options | null | undefined {
  if (!stored) return opts;
  const { num_ctx: _loaded, ...defaults } = stored;
  const merged: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(opts ?? {})) if (v !== null && v !== undefined) merged[k] = v;
  return merged as Options;
}

/**
 * `think` as the template reads it (Ollama's levels, for gpt-oss, are on): undefined when not given; on for a model
 * whose template cannot think, a 400 as Ollama answers.
 */
export function thinkOption(think: boolean | string | null | undefined, a: Admitted): boolean | undefined {
  if (think == null) return undefined;
  if (think !== false && !templateThinks(a.model.chatTemplate?.source ?? '')) {
    throw badRequest(`"${a.entry.name}" does not support thinking`, 'think');
  }
  return think !== false;
}
