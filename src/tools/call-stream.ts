import { type BodyReader, CallLog } from './call-log.ts';
import { CallPieces, type CallTags } from './call-pieces.ts';
import { DEEPSEEK_CALL, DEEPSEEK_MARKED } from './deepseek-calls.ts';
import { JsonCallsReader, MistralCallReader } from './json-call-reader.ts';
import { KIMI_CALL, KIMI_MARKED } from './kimi-calls.ts';
import { MarkedJsonCallsReader } from './marked-json-calls.ts';
import { looksPythonic, PythonicCallEnds, pythonicCallsSoFar } from './pythonic-calls.ts';
import type { ParsedToolCall, ToolCallFormat } from './tool-parser.ts';
import { parseXmlCalls } from './xml-calls.ts';

const XML_CALL = '<function=';
const XML_CALL_END = '</function>';

/** Where the calls in a text end as it streams: `scan` is handed each new piece. */
interface CallEnds {
  /** Just after the last call `text` closes (an offset into it), or -1. */
  scan(text: string): number;
}

/** Calls that each end with a marker (Qwen3-Coder's `</function>`); a marker split across pieces too. */
class MarkerEnds implements CallEnds {
  /** The end of the text so far that may be the start of the marker. */
  private tail = '';

  constructor(private readonly marker: string) {}

  scan(text: string): number {
    const window = this.tail + text;
    const at = window.lastIndexOf(this.marker);
    const end = at < 0 ? -1 : at + this.marker.length - this.tail.length;
    this.tail = window.slice(Math.max(0, window.length - this.marker.length + 1));
    return end;
  }
}

/** Calls that end with their body (GLM 4.5's, one to a body): told as its closing tag is read. */
const AT_CLOSE: CallEnds = { scan: () => -1 };

/**
 * Calls whose arguments are not JSON in the text (Qwen3-Coder's `<function=…>`, GLM's, pythonic), each told whole
 * once it ends: `parse` reads the body up to the end of the last call.
 */
class WholeCallsReader implements BodyReader {
  private body = '';
  private told = 0;
  private stopped = false;

  constructor(
    private readonly log: CallLog,
    private readonly ends: CallEnds,
    private readonly parse: (text: string) => ParsedToolCall[] | null,
  ) {}

  read(text: string): void {
    const end = this.ends.scan(text);
    const before = this.body.length;
    this.body += text;
    if (end >= 0) this.tell(before + end);
  }

  close(): void {
    this.tell(this.body.length);
  }

  /** The calls of the body up to `end` not told yet. */
  private tell(end: number): void {
    if (this.stopped) return;
    const calls = this.parse(this.body.slice(0, end));
    this.stopped = calls === null;
    for (const call of calls?.slice(this.told) ?? []) this.log.whole(call);
    this.told = calls?.length ?? 0;
  }
}

/**
 * The reader for a call body, by its first characters as `parseCallBody` tells the forms apart; null while they may
 * still open more than one form, a reader of nothing when they open none.
 */
function readerFor(head: string, log: CallLog, format: ToolCallFormat): BodyReader | null {
  const { readBody, parameterTypes } = format;
  if (readBody) return new WholeCallsReader(log, AT_CLOSE, (t) => readBody(t, parameterTypes));
  const text = head.trimStart();
  if (text.startsWith(XML_CALL)) {
    const parse = (t: string) => parseXmlCalls(t.trim(), format.parameterTypes);
    return new WholeCallsReader(log, new MarkerEnds(XML_CALL_END), parse);
  }
  if (text.startsWith(DEEPSEEK_CALL)) return new MarkedJsonCallsReader(log, DEEPSEEK_MARKED);
  if (text.startsWith(KIMI_CALL)) return new MarkedJsonCallsReader(log, KIMI_MARKED);
  if (looksPythonic(text)) return new WholeCallsReader(log, new PythonicCallEnds(), pythonicCallsSoFar);
  if (/^[A-Za-z0-9_.-]+\[ARGS\]/.test(text)) return new MistralCallReader(log);
  // Not yet told apart: nothing, the start of a marker, a list's '[' and what may be a pythonic call's name, a name.
  const undecided =
    !text ||
    [XML_CALL, DEEPSEEK_CALL, KIMI_CALL].some((marker) => marker.startsWith(text)) ||
    /^\[\s*([A-Za-z_][\w.-]*)?$/.test(text);
  if (undecided || /^[A-Za-z0-9_.-]+(\[(A(R(GS?)?)?)?)?$/.test(text)) return null;
  return text[0] === '{' || text[0] === '[' ? new JsonCallsReader(log) : { read() {} };
}

/**
 * A call text (from `tags.start`, the tag that opened the first call, or the bare JSON that is one) read as it
 * streams, its calls written into `log` as far as their form shows them: JSON arguments as they are read, other forms
 * whole as each call closes. The text is cut into bodies as `ToolCallParser.finish` cuts it (call-pieces.ts).
 */
export class CallStream {
  readonly log = new CallLog();
  /** The call text so far. */
  text = '';
  private readonly pieces: CallPieces;
  /** The body being read: its first characters (until they tell which reader reads it), and its reader. */
  private head = '';
  private reader: BodyReader | null = null;

  constructor(
    format: ToolCallFormat,
    readonly tags: CallTags | null,
    text: string,
  ) {
    this.pieces = new CallPieces(tags, {
      piece: () => {
        this.head = '';
        this.reader = null;
      },
      body: (body) => {
        if (this.reader) this.reader.read(body);
        else {
          this.head += body;
          this.reader = readerFor(this.head, this.log, format);
          this.reader?.read(this.head);
        }
      },
      close: () => this.reader?.close?.(),
    });
    this.push(text);
  }

  push(text: string): void {
    this.text += text;
    this.pieces.push(text);
  }
}
