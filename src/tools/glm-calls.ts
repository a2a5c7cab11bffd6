import { setOwn, TOOL_NAME, wholeMatches } from './call-text.ts';
import type { ParsedToolCall } from './tool-parser.ts';
import { type ParameterTypes, typedValue } from './xml-calls.ts';

const ARGUMENT = /<arg_key>([\s\S]*?)<\/arg_key>\s*<arg_value>([\s\S]*?)<\/arg_value>/g;

/**
 * GLM 4.5's call, one to a body: the function's name, then `<arg_key>K</arg_key>` `<arg_value>V</arg_value>` for each
 * argument (key and value trimmed, as vLLM's glm45 parser reads them). A value is text, typed by the function's schema
 * as Qwen3-Coder's are (xml-calls.ts). Null unless the body is such a call and nothing else.
 */
export function parseGlmCall(body: string, types: ParameterTypes | undefined): ParsedToolCall[] | null {
  const head = /^\s*([^\s<]+)/.exec(body);
  const name = head?.[1];
  if (!name || !TOOL_NAME.test(name)) return null;
  const rest = body.slice(head[0].length);
  const pairs = rest.trim() ? wholeMatches(rest, ARGUMENT) : [];
  if (!pairs) return null;
  const args: Record<string, unknown> = {};
  for (const p of pairs) {
    const key = p[1]!.trim();
    setOwn(args, key, typedValue(p[2]!.trim(), types?.get(name)?.get(key)));
  }
  return [{ name, arguments: args }];
}
