import { ApiError } from './errors.ts';

const decoder = new TextDecoder('utf-8', { fatal: true });
/** In `u` mode a surrogate pair is one code point, so this matches only lone surrogates. */
const LONE_SURROGATE = /\p{Cs}/u;
/**
 * A `\uD800`..`\uDFFF` escape: strict UTF-8 cannot carry a surrogate, so a JSON text without one has none to check
 * (most bodies: token ids, plain text).
 */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/** Every string in a parsed body must be well-formed UTF-16 (no lone surrogates from `\ud800` escapes). */
function checkStrings(v: unknown): void {
  const stack = [v];
  while (stack.length) {
    const x = stack.pop();
    if (typeof x === 'string') {
      if (LONE_SURROGATE.test(x))
        throw new ApiError(400, 'request body contains a lone surrogate (ill-formed Unicode)');
    } else if (x && typeof x === 'object') {
      for (const [k, child] of Object.entries(x)) {
        stack.push(k);
        stack.push(child);
      }
    }
  }
}

/**
 * Parses a request body as JSON whatever its content type (curl -d sends form-urlencoded, Ollama accepts it):
 * invalid UTF-8, malformed JSON and ill-formed strings are 400s.
 */
export function parseJsonBody(buf: Buffer): unknown {
  if (buf.length === 0) return undefined;
  let text: string;
  try {
    text = decoder.decode(buf);
  } catch {
    throw new ApiError(400, 'request body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, `request body is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
  if (SURROGATE_ESCAPE.test(text)) checkStrings(value);
  return value;
}
