import type { z } from 'zod';
import { ApiError } from './errors.ts';

function pathText(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s;
}

/** Validates a parsed JSON body; the first problem becomes a 400 naming the field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  if (body === undefined || body === null) throw new ApiError(400, 'request body is required (a JSON object)');
  if (typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'request body must be a JSON object');
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0];
    const param = pathText([...issue.path, key]);
    throw new ApiError(400, `unknown field "${param.slice(0, 100)}": pagoda does not support it`, param);
  }
  const param = pathText(issue.path);
  throw new ApiError(400, param ? `${param}: ${issue.message}` : issue.message, param || null);
}
