import type { BodyReader, CallLog } from './call-log.ts';
import { asCall } from './call-text.ts';
import { CanonicalJson, isJsonSpace } from './canonical-json.ts';

/** The member names whose object is a call's arguments (Llama 3.x writes `parameters`). */
const ARGUMENT_KEYS = new Set(['arguments', 'parameters']);

/**
 * One call object, `{"name": …, "arguments": {…}}` in any member order, read as it streams (its `{` already read): the
 * call starts once its name is read, and arguments that are an object stream as they are read. Arguments in another
 * form (a string of JSON, none at all) are told whole when the object ends, as is the call when its name came last.
 */
class CallObjectReader {
  status: 'reading' | 'done' | 'failed' = 'reading';
  /** Where in a member the reader is: before its key, before the colon, before its value, after it. */
  private at: 'key' | 'colon' | 'value' | 'next' = 'key';
  /** The key or value being read. */
  private part: CanonicalJson | null = null;
  private member = '';
  /** The object so far, rewritten (what JSON.parse reads at its end). */
  private text = '{';
  private args: CanonicalJson | null = null;
  private index: number | null = null;

  constructor(private readonly log: CallLog) {}

  /** Reads `chunk` up to the object's end; returns how many of its characters were the object's. */
  push(chunk: string): number {
    let i = 0;
    while (i < chunk.length && this.status === 'reading') {
      const part = this.part;
      if (part) {
        i += part.push(chunk.slice(i));
        this.tell();
        if (part.status === 'failed') this.status = 'failed';
        if (part.status !== 'done') continue;
        this.part = null;
        this.text += part.text;
        if (this.at === 'key') this.member = JSON.parse(part.text);
        else this.readValue(part);
        this.at = this.at === 'key' ? 'colon' : 'next';
        continue;
      }
      const c = chunk[i]!;
      if (isJsonSpace(c)) i++;
      else if (c === '}' && (this.at === 'next' || (this.at === 'key' && this.text === '{'))) {
        i++;
        this.text += c;
        this.close();
      } else if ((this.at === 'key' && c === '"') || this.at === 'value') {
        this.part = new CanonicalJson();
        if (this.at === 'value' && ARGUMENT_KEYS.has(this.member) && c === '{' && !this.args) this.args = this.part;
      } else if ((this.at === 'colon' && c === ':') || (this.at === 'next' && c === ',')) {
        i++;
        this.text += c;
        this.at = c === ':' ? 'value' : 'key';
      } else this.status = 'failed';
    }
    return i;
  }

  private readValue(value: CanonicalJson): void {
    if (this.member !== 'name' || this.index !== null) return;
    const name = JSON.parse(value.text);
    if (typeof name !== 'string') return;
    this.index = this.log.start(name);
    this.tell();
  }

  /** The arguments read since last told, once the call has started. */
  private tell(): void {
    if (this.index !== null && this.args) this.log.append(this.index, this.args.take());
  }

  private close(): void {
    const call = asCall(JSON.parse(this.text));
    if (!call) {
      this.status = 'failed';
      return;
    }
    this.status = 'done';
    this.index ??= this.log.start(call.name);
    if (this.args) this.tell();
    else this.log.append(this.index, JSON.stringify(call.arguments));
    this.log.end(this.index);
  }
}

/**
 * A body of JSON calls as `parseCallBody` reads them: call objects, or lists of them, apart by spaces, ',' or ';' (a
 * tag's list ends in ']'), each call read as it streams. Reading stops at the first text that is not such calls.
 */
export class JsonCallsReader implements BodyReader {
  private call: CallObjectReader | null = null;
  /** Inside a list: after its '[' or a ',' (a call next; after '[' also ']'), or after a call (',' or ']'). */
  private list: 'first' | 'item' | 'next' | null = null;
  private stopped = false;

  constructor(private readonly log: CallLog) {}

  read(text: string): void {
    let at = 0;
    while (at < text.length && !this.stopped) {
      if (this.call) {
        at += this.call.push(text.slice(at));
        if (this.call.status === 'reading') return;
        this.stopped = this.call.status === 'failed';
        this.call = null;
        if (this.list) this.list = 'next';
        continue;
      }
      const c = text[at++]!;
      if (/\s/.test(c) || (!this.list && (c === ',' || c === ';'))) continue;
      if (c === '{' && this.list !== 'next') this.call = new CallObjectReader(this.log);
      else if (c === '[' && !this.list) this.list = 'first';
      else if (c === ',' && this.list === 'next') this.list = 'item';
      else if (c === ']' && (this.list === 'first' || this.list === 'next')) this.list = null;
      else this.stopped = true;
    }
  }
}

/** Mistral's newer call, `NAME[ARGS]{…}`: it starts once `[ARGS]` closes its name; its arguments stream. */
export class MistralCallReader implements BodyReader {
  /** The text before the arguments, until it holds the name. */
  private head = '';
  /** Whether the arguments open as an object: null until their first character. */
  private args: { index: number; json: CanonicalJson; opened: boolean | null } | null = null;
  private ended = false;

  constructor(private readonly log: CallLog) {}

  read(text: string): void {
    if (!this.args) {
      this.head += text;
      const named = /^\s*([A-Za-z0-9_.-]+)\[ARGS\]/.exec(this.head);
      if (!named) return;
      this.args = { index: this.log.start(named[1]!), json: new CanonicalJson(), opened: null };
      text = this.head.slice(named[0].length);
    }
    const { index, json } = this.args;
    // The arguments are an object, written right after [ARGS].
    if (this.args.opened === null && text) this.args.opened = text[0] === '{';
    if (this.ended || !this.args.opened) return;
    json.push(text);
    this.log.append(index, json.take());
    if (json.status !== 'done') return;
    this.ended = true;
    this.log.end(index);
  }
}
