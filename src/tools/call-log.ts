import type { ParsedToolCall } from './tool-parser.ts';

/** A call as an answer gives it: parsed, and its arguments as the JSON text a stream of the call adds up to. */
export interface ToolCall extends ParsedToolCall {
  argumentsJson: string;
}

/**
 * What a stream is told of the calls as they are written: a call starts once its name is known, its arguments' JSON
 * text follows in pieces, and it ends whole.
 */
export type CallEvent =
  | { type: 'start'; index: number; name: string }
  | { type: 'arguments'; index: number; text: string }
  | { type: 'end'; index: number; call: ToolCall };

/** A call as far as it is written: its name, its arguments' text so far, and the whole call once it ended. */
export interface WrittenCall {
  name: string;
  argumentsJson: string;
  call: ToolCall | null;
}

/** The calls an answer has written so far, and the events not yet taken. */
export class CallLog {
  readonly calls: WrittenCall[] = [];
  private events: CallEvent[] = [];

  /** A call whose name is known; its index. */
  start(name: string): number {
    const index = this.calls.push({ name, argumentsJson: '', call: null }) - 1;
    this.events.push({ type: 'start', index, name });
    return index;
  }

  /** More of a call's arguments text (one event for what comes in one piece). */
  append(index: number, text: string): void {
    if (!text) return;
    this.calls[index]!.argumentsJson += text;
    const last = this.events.at(-1);
    if (last?.type === 'arguments' && last.index === index) last.text += text;
    else this.events.push({ type: 'arguments', index, text });
  }

  /** A call whose arguments are complete. */
  end(index: number): void {
    const written = this.calls[index]!;
    const { name, argumentsJson } = written;
    written.call = { name, arguments: JSON.parse(argumentsJson), argumentsJson };
    this.events.push({ type: 'end', index, call: written.call });
  }

  /** A call read whole (formats whose arguments are not JSON in the text). */
  whole(call: ParsedToolCall): void {
    const index = this.start(call.name);
    this.append(index, JSON.stringify(call.arguments));
    this.end(index);
  }

  /** The events since the last take. */
  take(): CallEvent[] {
    return this.events.splice(0);
  }
}

/** Reads the calls of a body of call text into a log as the text comes, a piece at a time. */
export interface BodyReader {
  read(text: string): void;
  /** The body's closing tag was read: its calls are whole. */
  close?(): void;
}
