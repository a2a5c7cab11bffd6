import type { FastifyBaseLogger } from 'fastify';
import { z } from 'zod';
import { IGNORED_OPTIONS } from '../store/modelfile.ts';

/** OpenAI request fields that change nothing here: bookkeeping and hints for OpenAI's own service. */
export const IGNORED_OPENAI_FIELDS = [
  'store',
  'metadata',
  'service_tier',
  'prompt_cache_key',
  'safety_identifier',
  'verbosity',
  'user',
  // OpenAI's predicted output: a hint for speed, the answer is the same.
  'prediction',
  // vLLM's: only slow (Python) tokenizers read it.
  'spaces_between_special_tokens',
] as const;

/** Schema entries that accept the named fields with any value. */
export function acceptAnything<const N extends string>(names: readonly N[]): Record<N, z.ZodOptional<z.ZodUnknown>> {
  return Object.fromEntries(names.map((n) => [n, z.unknown().optional()])) as Record<N, z.ZodOptional<z.ZodUnknown>>;
}

/**
 * Schema entries for IGNORED_OPENAI_FIELDS and `more`: any value, but `user` a string (or null), whose type OpenAI
 * checks ("Invalid type for 'user'").
 */
export function ignoredOpenAiFields<const N extends string>(more: readonly N[] = []) {
  return { ...acceptAnything([...IGNORED_OPENAI_FIELDS, ...more]), user: z.string().max(1024).nullish() };
}

/** The ignored fields a request to `route` carries (options as `options.name`). */
function ignoredIn(route: string, body: unknown): string[] {
  if (!body || typeof body !== 'object') return [];
  const b = body as Record<string, unknown>;
  if (route.startsWith('/v1/')) return IGNORED_OPENAI_FIELDS.filter((f) => b[f] !== undefined);
  const options = b.options as Record<string, unknown> | null | undefined;
  if ((route === '/api/generate' || route === '/api/chat') && options && typeof options === 'object') {
    return IGNORED_OPTIONS.filter((o) => options[o] !== undefined).map((o) => `options.${o}`);
  }
  return [];
}

/** Logs, at debug level, the first request that carries each ignored field. */
export function ignoredFieldLog(log: FastifyBaseLogger) {
  const seen = new Set<string>();
  return (route: string, body: unknown): void => {
    for (const field of ignoredIn(route, body)) {
      if (seen.has(field)) continue;
      seen.add(field);
      log.debug({ route, field }, 'field accepted and ignored: it changes nothing in pagoda');
    }
  };
}
