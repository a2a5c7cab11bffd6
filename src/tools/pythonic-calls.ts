import { setOwn } from './call-text.ts';
import { LiteralScanner } from './literal-scanner.ts';
import type { ParsedToolCall } from './tool-parser.ts';

/** Whether `text` opens as a list of Python-style calls: `[name(`. */
export function looksPythonic(text: string): boolean {
  return /^\[\s*[A-Za-z_][\w.-]*\(/.test(text);
}

/**
 * Calls written as a Python list of function calls with keyword arguments, `[get_weather(city="Paris", days=3), …]`
 * (vLLM's `pythonic` parser: Llama 3.2 and Llama 4 with their pythonic templates). Argument values are Python
 * literals: strings, numbers, True / False / None, lists, tuples and dicts. Null when the text is anything else.
 */
export function parsePythonicCalls(text: string): ParsedToolCall[] | null {
  const calls: ParsedToolCall[] = [];
  return readPythonicCalls(text.trim(), calls) && calls.length > 0 ? calls : null;
}

/**
 * OLMo 3's calls: Python-style calls one after another (a line each, as it writes them; commas between them are read
 * too), not in a list; values may also be JSON's null / true / false, as vLLM's olmo3 parser reads them. Null when
 * the text is anything else.
 */
export function parseCallSequence(text: string): ParsedToolCall[] | null {
  const calls: ParsedToolCall[] = [];
  const p = new PythonLiterals(text);
  try {
    while (!p.atEnd()) {
      if (calls.length > 0) p.take(',');
      calls.push(p.call());
    }
  } catch (err) {
    if (err instanceof NotPython) return null;
    throw err;
  }
  return calls.length > 0 ? calls : null;
}

/** The calls of a pythonic list written so far, each once its `)` is read (a stream's view of the list). */
export function pythonicCallsSoFar(text: string): ParsedToolCall[] {
  const calls: ParsedToolCall[] = [];
  readPythonicCalls(text.trim(), calls);
  return calls;
}

/**
 * Where the calls of a pythonic list end as its text streams: the `)` that closes a call (outside strings and nested
 * brackets), so a stream parses the list once per call rather than at every `)`.
 */
export class PythonicCallEnds {
  private readonly literals = new LiteralScanner();

  /** Just after the last call `text` closes (an offset into it), or -1. */
  scan(text: string): number {
    let last = -1;
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (this.literals.step(c) && c === ')' && this.literals.depth === 1) last = i + 1;
    }
    return last;
  }
}

/** Reads a list of calls into `calls` as far as it goes; whether the text was the list and nothing else. */
function readPythonicCalls(text: string, calls: ParsedToolCall[]): boolean {
  const p = new PythonLiterals(text);
  try {
    p.expect('[');
    p.items(']', () => calls.push(p.call()));
    return p.atEnd();
  } catch (err) {
    if (err instanceof NotPython) return false;
    throw err;
  }
}

class NotPython extends Error {}

/** A recursive-descent reader of the Python literals a call's arguments use. */
class PythonLiterals {
  private at = 0;

  constructor(private readonly text: string) {}

  atEnd(): boolean {
    this.space();
    return this.at === this.text.length;
  }

  /** Consumes `c` (after any spaces) if it is next. */
  take(c: string): boolean {
    this.space();
    if (this.text[this.at] !== c) return false;
    this.at++;
    return true;
  }

  expect(c: string): void {
    if (!this.take(c)) throw new NotPython();
  }

  /** Items up to `close`, comma-separated (a trailing comma allowed), each read by `item`. */
  items(close: string, item: () => void): void {
    for (let first = true; !this.take(close); first = false) {
      if (!first) {
        this.expect(',');
        if (this.take(close)) return;
      }
      item();
    }
  }

  /** `name(key=value, …)`. */
  call(): ParsedToolCall {
    const name = this.name();
    const args: Record<string, unknown> = {};
    this.expect('(');
    this.items(')', () => {
      const key = this.name();
      this.expect('=');
      setOwn(args, key, this.value());
    });
    return { name, arguments: args };
  }

  name(): string {
    this.space();
    const m = /^[A-Za-z_][\w.-]*/.exec(this.text.slice(this.at));
    if (!m) throw new NotPython();
    this.at += m[0].length;
    return m[0];
  }

  value(): unknown {
    this.space();
    const c = this.text[this.at];
    if (c === '"' || c === "'") return this.string(c);
    if (c === '[' || c === '(') return this.sequence(c === '[' ? ']' : ')');
    if (c === '{') return this.dict();
    const rest = this.text.slice(this.at);
    const number = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(rest);
    if (number) {
      this.at += number[0].length;
      return Number(number[0]);
    }
    // JSON's words too: a model shown its tools' schemas in JSON may write them (vLLM's olmo3 parser reads them).
    const word = /^(True|False|None|true|false|null)\b/.exec(rest);
    if (!word) throw new NotPython();
    this.at += word[0].length;
    return word[0] === 'None' || word[0] === 'null' ? null : word[0] === 'True' || word[0] === 'true';
  }

  private sequence(close: string): unknown[] {
    this.at++;
    const items: unknown[] = [];
    this.items(close, () => items.push(this.value()));
    return items;
  }

  private dict(): Record<string, unknown> {
    this.at++;
    const out: Record<string, unknown> = {};
    this.items('}', () => {
      const key = this.value();
      if (typeof key !== 'string' && typeof key !== 'number') throw new NotPython();
      this.expect(':');
      setOwn(out, String(key), this.value());
    });
    return out;
  }

  /** A quoted string with Python's common escapes (\n, \t, \\, the quotes, \xXX, \uXXXX). */
  private string(quote: string): string {
    let out = '';
    for (this.at++; this.at < this.text.length; this.at++) {
      const c = this.text[this.at]!;
      if (c === quote) {
        this.at++;
        return out;
      }
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.text[++this.at];
      const digits = e === 'u' ? 4 : e === 'x' ? 2 : 0;
      const hex = this.text.slice(this.at + 1, this.at + 1 + digits);
      if (digits > 0 && hex.length === digits && /^[0-9a-fA-F]+$/.test(hex)) {
        out += String.fromCharCode(Number.parseInt(hex, 16));
        this.at += digits;
      } else out += ESCAPES[e ?? ''] ?? `\\${e ?? ''}`;
    }
    throw new NotPython();
  }

  private space(): void {
    while (this.at < this.text.length && /\s/.test(this.text[this.at]!)) this.at++;
  }
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0' };
