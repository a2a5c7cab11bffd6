import type { BodyReader, CallLog } from './call-log.ts';
import { jsonObject, TOOL_NAME, wholeMatches } from './call-text.ts';
import { CanonicalJson } from './canonical-json.ts';
import type { ParsedToolCall } from './tool-parser.ts';

/** What opens one DeepSeek call. */
export const DEEPSEEK_CALL = '<｜tool▁call▁begin｜>';
/** What closes one. */
export const DEEPSEEK_CALL_END = '<｜tool▁call▁end｜>';
const CALL = /<｜tool▁call▁begin｜>((?:(?!<｜tool▁call▁end｜>)[\s\S])*?)<｜tool▁sep｜>([\s\S]*?)<｜tool▁call▁end｜>/g;
const FENCED = /^([^\n]+)\n```(?:json)?\n?([\s\S]*?)\n?```\s*$/;

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

/** The text before a call's arguments: V3.1's `NAME<｜tool▁sep｜>`, or V3's `function<｜tool▁sep｜>NAME` and fence. */
const CALL_HEAD = /^\s*<｜tool▁call▁begin｜>((?:(?!<｜tool▁)[\s\S])*?)<｜tool▁sep｜>/;
const FENCE_HEAD = /^([^\n]+)\n```(?:json)?\n?/;

/**
 * DeepSeek's calls read as they stream: each starts once its name is read and its arguments (a JSON object) stream
 * as they are read, as `parseDeepSeekCalls` reads them whole. Reading stops at the first text that is not such
 * calls; the whole parse at the end decides then.
 */
export class DeepSeekCallsReader implements BodyReader {
  /** Text not read yet: before a call's arguments, or after them up to its closing marker. */
  private pending = '';
  private args: { index: number; json: CanonicalJson } | null = null;
  /** A call's arguments ended: its closing marker is next. */
  private closing = false;
  private stopped = false;

  constructor(private readonly log: CallLog) {}

  read(text: string): void {
    this.pending += text;
    while (!this.stopped && this.pending) {
      if (this.args) this.readArguments(this.args);
      else if (!this.readUpTo()) return;
    }
  }

  private readArguments(args: { index: number; json: CanonicalJson }): void {
    const used = args.json.push(this.pending);
    this.pending = this.pending.slice(used);
    this.log.append(args.index, args.json.take());
    if (args.json.status === 'failed') this.stopped = true;
    if (args.json.status !== 'done') return;
    this.log.end(args.index);
    this.args = null;
    this.closing = true;
  }

  /** Reads a call's closing marker or its head, as far as the text goes; false when it needs more text. */
  private readUpTo(): boolean {
    if (this.closing) {
      const at = this.pending.indexOf(DEEPSEEK_CALL_END);
      if (at < 0) return false;
      // Only V3's closing fence may come between the arguments and the marker.
      this.stopped = !/^\s*(```\s*)?$/.test(this.pending.slice(0, at));
      this.pending = this.pending.slice(at + DEEPSEEK_CALL_END.length);
      this.closing = false;
      return !this.stopped;
    }
    const head = CALL_HEAD.exec(this.pending);
    if (!head) {
      const lead = this.pending.trimStart();
      this.stopped = !DEEPSEEK_CALL.startsWith(lead) && !lead.startsWith(DEEPSEEK_CALL);
      return false;
    }
    // Wait for the arguments' first brace: V3's fence line is whole by then.
    const rest = this.pending.slice(head[0].length);
    const brace = rest.indexOf('{');
    if (brace < 0) return false;
    const fenced = head[1]!.trim() === 'function' && FENCE_HEAD.exec(rest);
    const name = fenced ? fenced[1]!.trim() : head[1]!.trim();
    const before = fenced ? rest.slice(fenced[0].length, brace) : rest.slice(0, brace);
    if (!TOOL_NAME.test(name) || before.trim()) {
      this.stopped = true;
      return false;
    }
    this.args = { index: this.log.start(name), json: new CanonicalJson() };
    this.pending = rest.slice(brace);
    return true;
  }
}
