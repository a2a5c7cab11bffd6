import { jsonObject, TOOL_NAME, wholeMatches } from './call-text.ts';
import type { ParsedToolCall } from './tool-parser.ts';

/** What opens one Kimi K2 call. */
export const KIMI_CALL = '<|tool_call_begin|>';
/** What closes one. */
export const KIMI_CALL_END = '<|tool_call_end|>';
const CALL = /<\|tool_call_begin\|>([^<]*):\d+\s*<\|tool_call_argument_begin\|>([\s\S]*?)<\|tool_call_end\|>/g;

/**
 * Kimi K2's calls, each `<|tool_call_begin|>functions.NAME:INDEX<|tool_call_argument_begin|>{…}<|tool_call_end|>`: the
 * call's id names the function (without `functions.`, which not every call writes) and counts the calls. Null unless
 * the text is such calls and nothing else.
 */
export function parseKimiCalls(text: string): ParsedToolCall[] | null {
  const matches = wholeMatches(text, CALL);
  if (!matches) return null;
  const calls: ParsedToolCall[] = [];
  for (const m of matches) {
    const name = m[1]!.trim().replace(/^functions\./, '');
    const args = jsonObject(m[2]!);
    if (!TOOL_NAME.test(name) || !args) return null;
    calls.push({ name, arguments: args });
  }
  return calls;
}
