/** Whether `c` is whitespace as JSON has it. */
export const isJsonSpace = (c: string) => c === ' ' || c === '\n' || c === '\t' || c === '\r';
const ESCAPED: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?$/;
const HEX = /^[0-9a-fA-F]$/;
const LITERALS = ['true', 'false', 'null'];

/** What the reader expects next outside a string, number or literal. */
type Expect = 'value' | 'valueOrClose' | 'key' | 'keyOrClose' | 'colon' | 'commaOrClose';

/**
 * One JSON value read as its text arrives and written out as `JSON.stringify(JSON.parse(text))` writes it (no
 * spaces, strings escaped as JSON.stringify escapes them, numbers as JavaScript prints them), so a call's arguments
 * can stream in the form a whole answer gives them. Two things it cannot know in time are kept as written: a key
 * given twice (JSON.parse keeps the last value in the first place) and integer-like keys (JSON.parse's objects put
 * them first). Text JSON.parse would refuse fails it.
 */
export class CanonicalJson {
  /** The value so far, rewritten. */
  text = '';
  /** What was written since the last `take`. */
  private fresh = '';
  status: 'reading' | 'done' | 'failed' = 'reading';
  private expect: Expect = 'value';
  /** The open objects and arrays, innermost last. */
  private readonly open: ('{' | '[')[] = [];
  private token: 'string' | 'number' | 'literal' | null = null;
  /** The string being read is a key. */
  private key = false;
  /** A string's characters not written yet: at most a high surrogate waiting for its pair. */
  private chars = '';
  /** An escape being read: '' after the backslash, then 'u' and its hex digits. */
  private escape: string | null = null;
  /** The number or literal (true, false, null) being read. */
  private word = '';

  /** Reads `chunk` up to the value's end; returns how many of its characters were the value's. */
  push(chunk: string): number {
    let i = 0;
    while (i < chunk.length && this.status === 'reading') {
      if (this.step(chunk[i]!)) i++;
    }
    this.writeChars(false);
    return i;
  }

  /** What was written since the last call. */
  take(): string {
    const out = this.fresh;
    this.fresh = '';
    return out;
  }

  private write(text: string): void {
    this.text += text;
    this.fresh += text;
  }

  /** Reads one character; false when it was not the value's to read (the end of a number), to be read again. */
  private step(c: string): boolean {
    if (this.token === 'string') return this.stringChar(c) || this.fail();
    if (this.token === 'number') {
      if (/[-+.eE0-9]/.test(c)) this.word += c;
      else {
        if (!NUMBER.test(this.word)) return this.fail();
        this.write(JSON.stringify(Number(this.word)));
        this.endValue();
        return false;
      }
    } else if (this.token === 'literal') {
      this.word += c;
      if (!LITERALS.some((w) => w.startsWith(this.word))) return this.fail();
      if (LITERALS.includes(this.word)) {
        this.write(this.word);
        this.endValue();
      }
    } else if (!isJsonSpace(c) && !this.structure(c)) return this.fail();
    return true;
  }

  /** A character between tokens; false when JSON has no such character there. */
  private structure(c: string): boolean {
    const closes = c === '}' ? '{' : c === ']' ? '[' : null;
    const closing = closes === '{' ? 'keyOrClose' : 'valueOrClose';
    if (closes && (this.expect === 'commaOrClose' || this.expect === closing)) {
      if (this.open.pop() !== closes) return false;
      this.write(c);
      this.endValue();
      return true;
    }
    if (this.expect === 'key' || this.expect === 'keyOrClose') {
      this.key = true;
      return c === '"' && this.startString();
    }
    if (this.expect === 'colon' || this.expect === 'commaOrClose') {
      if (c !== (this.expect === 'colon' ? ':' : ',')) return false;
      this.write(c);
      this.expect = this.expect === 'colon' || this.open.at(-1) === '[' ? 'value' : 'key';
      return true;
    }
    if (c === '{' || c === '[') {
      this.open.push(c);
      this.write(c);
      this.expect = c === '{' ? 'keyOrClose' : 'valueOrClose';
      return true;
    }
    if (c === '"') return this.startString();
    if (c === '-' || (c >= '0' && c <= '9')) this.token = 'number';
    else if (c === 't' || c === 'f' || c === 'n') this.token = 'literal';
    else return false;
    this.word = c;
    return true;
  }

  private startString(): true {
    this.token = 'string';
    this.write('"');
    return true;
  }

  /** A character inside a string; false when JSON has no such character there. */
  private stringChar(c: string): boolean {
    if (this.escape === null) {
      if (c === '"') {
        this.writeChars(true);
        this.write('"');
        this.endValue();
      } else if (c === '\\') this.escape = '';
      else if (c < ' ') return false;
      else this.chars += c;
    } else if (this.escape === '') {
      if (c === 'u') this.escape = 'u';
      else if (c in ESCAPED) {
        this.chars += ESCAPED[c];
        this.escape = null;
      } else return false;
    } else {
      if (!HEX.test(c)) return false;
      this.escape += c;
      if (this.escape.length === 5) {
        this.chars += String.fromCharCode(Number.parseInt(this.escape.slice(1), 16));
        this.escape = null;
      }
    }
    return true;
  }

  /** Writes the string's characters read so far, but a high surrogate whose pair may follow (unless `closing`). */
  private writeChars(closing: boolean): void {
    if (this.token !== 'string' || !this.chars) return;
    const last = this.chars.charCodeAt(this.chars.length - 1);
    const keep = !closing && last >= 0xd800 && last <= 0xdbff ? 1 : 0;
    this.write(JSON.stringify(this.chars.slice(0, this.chars.length - keep)).slice(1, -1));
    this.chars = this.chars.slice(this.chars.length - keep);
  }

  private endValue(): void {
    const wasKey = this.token === 'string' && this.key;
    this.token = null;
    this.key = false;
    this.word = '';
    if (wasKey) this.expect = 'colon';
    else if (this.open.length === 0) this.status = 'done';
    else this.expect = 'commaOrClose';
  }

  private fail(): false {
    this.status = 'failed';
    return false;
  }
}
