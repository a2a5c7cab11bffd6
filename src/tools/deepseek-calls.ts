import { jsonObject, TOOL_NAME, wholeMatches } from './call-text.ts';
import type { MarkedCalls } from './marked-json-calls.ts';
import type { ParsedToolCall } from './tool-parser.ts';

/** What opens one DeepSeek call. */
export const DEEPSEEK_CALL = '<｜tool▁call▁begin｜>';
/** What closes one. */
const DEEPSEEK_CALL_END = '<｜tool▁call▁end｜>';
const CALL = /<｜tool▁call▁begin｜>((?:(?!<｜tool▁call▁end｜>)[\s\S])*?)<｜tool▁sep｜>([\s\S]*?)<｜tool▁call▁end｜>/g;
/** V3's head after `function<｜tool▁sep｜>`: the name, then the fence's first line. */
const FENCE_HEAD = /^([^\n]+)\n```(?:json)?\n?/;
/** V3's name and fenced arguments, whole. */
const FENCED = new RegExp(`${FENCE_HEAD.source}([\\s\\S]*?)\\n?\`\`\`\\s*$`);

/**
 * DeepSeek's calls, each `<｜tool▁call▁begin｜>…<｜tool▁call▁end｜>`: V3 / R1's `function<｜tool▁sep｜>NAME` and the
 * arguments in a json fence, or V3.1's `NAME<｜tool▁sep｜>{…}`. Null unless the text is such calls and nothing else.
 */
export function parseDeepSeekCalls(text: string): ParsedToolCall[] | null {
  const matches = wholeMatches(text, CALL);
  if (!matches) return null;
  const calls: ParsedToolCall[] = [];
  for (const m of matches) {
    const fenced = m[1]!.trim() === 'function' && FENCED.exec(m[2]!);
    const [name, json] = fenced ? [fenced[1]!.trim(), fenced[2]!] : [m[1]!.trim(), m[2]!];
    const args = jsonObject(json);
    if (!TOOL_NAME.test(name) || !args) return null;
    calls.push({ name, arguments: args });
  }
  return calls;
}

/** DeepSeek's calls as a stream reads them: V3.1's `NAME<｜tool▁sep｜>{…}`, V3's name and json fence. */
export const DEEPSEEK_MARKED: MarkedCalls = {
  begin: DEEPSEEK_CALL,
  end: DEEPSEEK_CALL_END,
  head(text, brace) {
    const head = /^\s*<｜tool▁call▁begin｜>((?:(?!<｜tool▁)[\s\S])*?)<｜tool▁sep｜>/.exec(text.slice(0, brace));
    if (!head) return null;
    const rest = text.slice(head[0].length, brace);
    const fenced = head[1]!.trim() === 'function' && FENCE_HEAD.exec(rest);
    const name = fenced ? fenced[1]!.trim() : head[1]!.trim();
    return (fenced ? rest.slice(fenced[0].length) : rest).trim() ? null : name;
  },
  // V3's closing fence.
  between: /^\s*(```\s*)?$/,
};
