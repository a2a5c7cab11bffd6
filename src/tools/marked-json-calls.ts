import type { BodyReader, CallLog } from './call-log.ts';
import { TOOL_NAME } from './call-text.ts';
import { CanonicalJson } from './canonical-json.ts';

/**
 * Calls each framed by markers around a head that names the function and JSON object arguments (DeepSeek's, Kimi
 * K2's): what a stream needs to read them as they are written.
 */
export interface MarkedCalls {
  /** What opens a call. */
  begin: string;
  /** What closes it. */
  end: string;
  /** The function's name, when `text` up to `brace` (the arguments' first '{') is a call's whole head; else null. */
  head(text: string, brace: number): string | null;
  /** What may come between a call's arguments and its closing marker. */
  between: RegExp;
}

/**
 * Marked calls read as they stream: each starts once its head is read and its arguments stream as they are read, as
 * a JSON call's do. Reading stops at the first text that is not such calls; the whole parse at the end decides then.
 */
export class MarkedJsonCallsReader implements BodyReader {
  /** Text not read yet: before a call's arguments, or after them up to its closing marker. */
  private pending = '';
  private args: { index: number; json: CanonicalJson } | null = null;
  /** A call's arguments ended: its closing marker is next. */
  private closing = false;
  private stopped = false;

  constructor(
    private readonly log: CallLog,
    private readonly calls: MarkedCalls,
  ) {}

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
    const { begin, end } = this.calls;
    if (this.closing) {
      const at = this.pending.indexOf(end);
      if (at < 0) return false;
      this.stopped = !this.calls.between.test(this.pending.slice(0, at));
      this.pending = this.pending.slice(at + end.length);
      this.closing = false;
      return !this.stopped;
    }
    const lead = this.pending.trimStart();
    if (!begin.startsWith(lead) && !lead.startsWith(begin)) {
      this.stopped = true;
      return false;
    }
    // The head is whole once the arguments' first brace is here.
    const brace = this.pending.indexOf('{');
    if (brace < 0) return false;
    const name = this.calls.head(this.pending, brace);
    if (name === null || !TOOL_NAME.test(name)) {
      this.stopped = true;
      return false;
    }
    this.args = { index: this.log.start(name), json: new CanonicalJson() };
    this.pending = this.pending.slice(brace);
    return true;
  }
}
