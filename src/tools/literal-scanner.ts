/**
 * Follows the brackets and string literals ('…' or "…", with backslash escapes) of a JSON or Python call text as it
 * streams, so that a tag or a call's closing bracket inside an argument's string is read as the string's text. Quotes
 * count only inside a bracket: a call text opens with one, and an apostrophe before it is prose.
 */
export class LiteralScanner {
  depth = 0;
  private quote: string | null = null;
  private escaped = false;

  /** Whether the next character is outside every string literal. */
  get outside(): boolean {
    return this.quote === null;
  }

  /** Reads one character; whether it was outside every string literal (a quote that opens or closes one is not). */
  step(c: string): boolean {
    if (this.quote) {
      if (this.escaped) this.escaped = false;
      else if (c === '\\') this.escaped = true;
      else if (c === this.quote) this.quote = null;
      return false;
    }
    if ((c === '"' || c === "'") && this.depth > 0) {
      this.quote = c;
      return false;
    }
    if (c === '(' || c === '[' || c === '{') this.depth++;
    else if (c === ')' || c === ']' || c === '}') this.depth--;
    return true;
  }

  copy(): LiteralScanner {
    const copy = new LiteralScanner();
    Object.assign(copy, this);
    return copy;
  }
}
