const QUOTES = '"""';

/**
 * Ollama's multi-line input: a line starting with """ opens a block that ends at a line ending with """; the lines
 * between are one message (joined by newlines, the quotes left out). `"""text"""` on one line is that text.
 */
export class MultilineInput {
  private lines: string[] | null = null;

  /** True while a block is open (the chat shows its continuation prompt). */
  get open(): boolean {
    return this.lines !== null;
  }

  /** Takes one typed line: the whole input once it is complete, else null (more lines to come). */
  add(line: string): string | null {
    if (this.lines === null) {
      if (!line.startsWith(QUOTES)) return line;
      this.lines = [];
      line = line.slice(QUOTES.length);
    }
    if (!line.endsWith(QUOTES)) {
      this.lines.push(line);
      return null;
    }
    // The lines the quotes stood on alone are no part of the message.
    const text = [...this.lines, line.slice(0, -QUOTES.length)].join('\n').replace(/^\n|\n$/g, '');
    this.lines = null;
    return text;
  }
}
