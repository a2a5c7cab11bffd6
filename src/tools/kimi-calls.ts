import { jsonObject, TOOL_NAME, wholeMatches } from './call-text.ts';
import type { MarkedCalls } from './marked-json-calls.ts';
import type { ParsedToolCall } from './tool-parser.ts';

/** What opens one Kimi K2 call. */
export const KIMI_CALL = '<|tool_call_begin|>';
/** What closes one. */
const KIMI_CALL_END = '<|tool_call_end|>';
/** A call's head: its id (`functions.NAME:INDEX`) up to where its arguments begin. */
const HEAD = String.raw`<\|tool_call_begin\|>([^<]*):\d+\s*<\|tool_call_argument_begin\|>`;
const CALL = new RegExp(String.raw`${HEAD}([\s\S]*?)<\|tool_call_end\|>`, 'g');
const WHOLE_HEAD = new RegExp(String.raw`^\s*${HEAD}\s*$`);

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
    const name = functionName(m[1]!);
    const args = jsonObject(m[2]!);
    if (!TOOL_NAME.test(name) || !args) return null;
    calls.push({ name, arguments: args });
  }
  return calls;
}

/** The function a call's id names: `functions.NAME`, or NAME alone. */
const functionName = (id: string) => id.trim().replace(/^functions\./, '');

/** Kimi K2's calls as a stream reads them. */
export const KIMI_MARKED: MarkedCalls = {
  begin: KIMI_CALL,
  end: KIMI_CALL_END,
  head(text, brace) {
    const head = WHOLE_HEAD.exec(text.slice(0, brace));
    return head ? functionName(head[1]!) : null;
  },
  between: /^\s*$/,
};
