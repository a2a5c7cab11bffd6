import { heldBackLength } from '../util/held-back.ts';
import { LiteralScanner } from './literal-scanner.ts';

/** A tag that opens calls and the one that closes them (null: none does; the next opening tag or the end does). */
export interface CallTags {
  start: string;
  end: string | null;
}

/** Where the first opening tag of `tags` is in `text`, and which it is; null if none is there. */
export function firstOpening(text: string, tags: readonly CallTags[]): { at: number; tags: CallTags } | null {
  let first: { at: number; tags: CallTags } | null = null;
  for (const t of tags) {
    const at = text.indexOf(t.start);
    if (at >= 0 && (!first || at < first.at)) first = { at, tags: t };
  }
  return first;
}

/**
 * What a call text is cut into: a new call's body begins (after an opening tag), more of the current body, and (where
 * one closed it) the body's closing tag.
 */
export interface PieceSink {
  piece(): void;
  body(text: string): void;
  close?(): void;
}

/**
 * How a body is read for tags: through its string literals once its first characters show JSON or Python calls (a
 * '{' or '[', or a name and '[': Mistral's `name[ARGS]`), else as markup (Qwen3-Coder's, DeepSeek's, Kimi K2's calls,
 * GLM's `NAME` then `<arg_key>`…, whose values are raw text) where any tag is one.
 */
class BodyReading {
  private literals: LiteralScanner | null = null;
  private markup = false;
  /** A name opened the body: what follows it tells Mistral's calls from GLM's. */
  private named = false;

  /** Whether a tag at the next character would be one (not inside a string). */
  get outside(): boolean {
    return this.literals?.outside ?? true;
  }

  step(c: string): void {
    if (this.literals) this.literals.step(c);
    else if (this.markup || (!this.named && /\s/.test(c))) return;
    else if (/[\w.-]/.test(c)) this.named = true;
    else if (c === '[' || (c === '{' && !this.named)) {
      this.literals = new LiteralScanner();
      this.literals.step(c);
    } else this.markup = true;
  }

  copy(): BodyReading {
    const copy = new BodyReading();
    copy.literals = this.literals?.copy() ?? null;
    copy.markup = this.markup;
    copy.named = this.named;
    return copy;
  }
}

/**
 * Cuts a call text into its calls' bodies as it streams: each body follows an opening tag (`tags.start`; no tags when
 * the text is one body) up to its closing tag (`tags.end`, if there is one); text after a closing tag and before the
 * next opening one is no body's. A tag inside a body's string literal is that string's text (see BodyReading). What
 * may be the start of a tag is held until it is known; `finish` hands it to the body.
 */
export class CallPieces {
  /** The text after what was handed on: the start of what may be a tag. */
  private held = '';
  private opened: boolean;
  private closed = false;
  private reading = new BodyReading();
  private readonly start: string | null;
  private readonly end: string | null;

  constructor(
    tags: CallTags | null,
    private readonly sink: PieceSink,
  ) {
    this.start = tags?.start ?? null;
    this.end = tags?.end ?? null;
    this.opened = tags === null;
  }

  push(text: string): void {
    let rest = this.held + text;
    for (;;) {
      // Inside a body its closing tag first: a fence's closing ``` would also open the next one.
      const tags = [this.opened && !this.closed ? this.end : null, this.start].filter((t) => t !== null);
      const found = this.findTag(rest, tags);
      if (!found) {
        const keep = heldBackLength(rest, tags);
        this.feed(rest.slice(0, rest.length - keep));
        this.held = rest.slice(rest.length - keep);
        return;
      }
      this.feed(rest.slice(0, found.at));
      rest = rest.slice(found.at + found.tag.length);
      if (found.tag === this.start) {
        this.opened = true;
        this.closed = false;
        this.reading = new BodyReading();
        this.sink.piece();
      } else {
        this.closed = true;
        this.sink.close?.();
      }
    }
  }

  /** The text has ended: what was held is the body's. */
  finish(): void {
    this.feed(this.held);
    this.held = '';
  }

  /** The first of `tags` in `text` outside the body's string literals (after a closing tag, anywhere). */
  private findTag(text: string, tags: string[]): { at: number; tag: string } | null {
    const reading = this.closed ? null : this.reading.copy();
    for (let at = 0; at < text.length; at++) {
      if (!reading || reading.outside) {
        const tag = tags.find((t) => text.startsWith(t, at));
        if (tag) return { at, tag };
      }
      reading?.step(text[at]!);
    }
    return null;
  }

  private feed(text: string): void {
    if (!this.opened || this.closed || !text) return;
    for (let i = 0; i < text.length; i++) this.reading.step(text[i]!);
    this.sink.body(text);
  }
}
