import { asCall, type ParsedToolCall, parseJsonPrefix } from './tool-parser.ts';

/** The call a forced answer was writing when the token limit cut it: its name once written, its arguments so far. */
export interface CutToolCall {
  name: string | null;
  argumentsText: string;
}

const NAME = /^\{\s*"name"\s*:\s*"([^"]*)"/;
const ARGUMENTS = /^\s*,\s*"arguments"\s*:\s*/;

/**
 * A forced answer (the JSON list of calls a grammar held it to: `[{"name": …, "arguments": {…}}, …]`) cut short: the
 * calls it finished, and the one it was writing. Never its text as content: that list is pagoda's, not the model's.
 */
export function cutForcedCalls(text: string): { calls: ParsedToolCall[]; cut: CutToolCall } {
  const calls: ParsedToolCall[] = [];
  let rest = text.trimStart().replace(/^\[/, '');
  for (;;) {
    rest = rest.replace(/^[\s,]+/, '');
    const whole = parseJsonPrefix(rest);
    const call = whole && asCall(whole.value);
    if (!whole || !call) break;
    calls.push(call);
    rest = whole.rest;
  }
  const name = NAME.exec(rest);
  if (!name) return { calls, cut: { name: null, argumentsText: '' } };
  const after = rest.slice(name[0].length);
  const args = ARGUMENTS.exec(after);
  return { calls, cut: { name: name[1]!, argumentsText: args ? after.slice(args[0].length) : '' } };
}
