import { setOwn, TOOL_NAME, wholeMatches } from './call-text.ts';
import type { ParsedToolCall } from './tool-parser.ts';

/** The JSON schema type of each function's parameters: function name → parameter → type. */
export type ParameterTypes = ReadonlyMap<string, ReadonlyMap<string, string>>;

const FUNCTION = /<function=([^>\n]+)>([\s\S]*?)<\/function>/g;
const PARAMETER = /<parameter=([^>\n]+)>([\s\S]*?)<\/parameter>/g;

/**
 * Qwen3-Coder's calls: `<function=NAME>` then `<parameter=P>` value `</parameter>` for each argument, each value on
 * lines of its own (one newline trimmed each side). A value is text: the function's schema types it (as vLLM's
 * qwen3_coder parser does); a parameter the schema does not know stays a string. Null unless the text is such calls
 * and nothing else.
 */
export function parseXmlCalls(text: string, types: ParameterTypes | undefined): ParsedToolCall[] | null {
  const functions = wholeMatches(text, FUNCTION);
  if (!functions) return null;
  const calls: ParsedToolCall[] = [];
  for (const fn of functions) {
    const name = fn[1]!.trim();
    if (!TOOL_NAME.test(name)) return null;
    const args: Record<string, unknown> = {};
    const body = fn[2]!;
    const params = body.trim() ? wholeMatches(body, PARAMETER) : [];
    if (!params) return null;
    for (const p of params) {
      const param = p[1]!.trim();
      setOwn(args, param, typedValue(p[2]!.replace(/^\n/, '').replace(/\n$/, ''), types?.get(name)?.get(param)));
    }
    calls.push({ name, arguments: args });
  }
  return calls;
}

/**
 * A text value as its schema type asks: integers and numbers written in decimal, true / false (any case), JSON objects and
 * arrays parsed; "null" is null; anything that does not read as its type stays the text.
 */
export function typedValue(value: string, type: string | undefined): unknown {
  if (value.trim().toLowerCase() === 'null') return null;
  if (type === undefined || type === 'string') return value;
  const v = value.trim();
  if (type === 'integer') return /^-?\d+$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : value;
  if (type === 'number') return /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v) ? Number(v) : value;
  const word = v.toLowerCase();
  if (type === 'boolean') return word === 'true' ? true : word === 'false' ? false : value;
  try {
    return JSON.parse(v);
  } catch {
    return value;
  }
}

/** Each function's parameters' JSON schema types (the first that is not "null" where a list is given). */
export function parameterTypesOf(
  tools: readonly { function: { name: string; parameters?: Record<string, unknown> | null } }[],
): Map<string, Map<string, string>> {
  const byFunction = new Map<string, Map<string, string>>();
  for (const { function: fn } of tools) {
    const properties = fn.parameters?.properties;
    const types = new Map<string, string>();
    if (typeof properties === 'object' && properties !== null) {
      for (const [param, schema] of Object.entries(properties)) {
        const type = typeof schema === 'object' && schema !== null ? (schema as { type?: unknown }).type : undefined;
        const first = Array.isArray(type) ? type.find((t) => t !== 'null') : type;
        if (typeof first === 'string') types.set(param, first);
      }
    }
    byFunction.set(fn.name, types);
  }
  return byFunction;
}
