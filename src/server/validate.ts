import type { z } from 'zod';
import { ApiError } from './errors.ts';

function pathText(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s;
}

/**
 * Validates a parsed JSON body; the first problem becomes a 400 naming the field. Unknown fields come first (a
 * misnamed field is why the right one is missing); `expected` says what the route takes instead.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, expected?: string): z.output<S> {
  if (body === undefined || body === null) throw new ApiError(400, 'request body is required (a JSON object)');
  if (typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'request body must be a JSON object');
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const { issues } = result.error;
  const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0];
  if (issue.code === 'unrecognized_keys') {
    const params = issue.keys.slice(0, 5).map((key) => pathText([...issue.path, key]).slice(0, 100));
    const names = params.map((p) => `"${p}"`).join(', ');
    const what =
      params.length === 1
        ? `unknown field ${names}: pagoda does not support it`
        : `unknown fields ${names}: pagoda does not support them`;
    throw new ApiError(400, expected ? `${what} (expected ${expected})` : what, params[0]);
  }
  const param = pathText(issue.path);
  throw new ApiError(400, param ? `${param}: ${issue.message}` : issue.message, param || null);
}
