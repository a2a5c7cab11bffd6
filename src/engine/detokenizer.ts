import type { TextTokenizer } from '../loader/tokenizer.ts';

/** Prompt tokens decoded before the first generated one, so its leading space and merges come out right (vLLM's 5). */
const PROMPT_CONTEXT_TOKENS = 5;

/**
 * Turns a stream of generated token ids into text deltas, as vLLM's incremental detokenizer does: it decodes a
 * short window [prefixOffset, end) and emits what lies past the already-emitted part [prefixOffset, readOffset).
 * Text that ends in U+FFFD (a character whose bytes are split across tokens) is held back until the character
 * completes, and so is a run of byte-fallback tokens until it ends (transformers decodes an invalid run as a whole
 * to U+FFFDs), so no delta ever carries a broken character; the concatenated deltas equal the full decode.
 */
export class IncrementalDetokenizer {
  private readonly ids: number[];
  private prefixOffset: number;
  private readOffset: number;
  private emitted = '';
  private readonly skipSpecialTokens: boolean;

  constructor(
    private readonly tokenizer: TextTokenizer,
    opts: { promptIds?: readonly number[]; skipSpecialTokens?: boolean } = {},
  ) {
    this.ids = [...(opts.promptIds ?? [])];
    this.readOffset = this.ids.length;
    this.prefixOffset = Math.max(0, this.ids.length - PROMPT_CONTEXT_TOKENS);
    this.skipSpecialTokens = opts.skipSpecialTokens ?? false;
  }

  /** All text emitted so far. */
  get text(): string {
    return this.emitted;
  }

  /** Appends generated ids and returns the text they complete ('' while a character is still partial). */
  push(ids: number | readonly number[]): string {
    let delta = '';
    for (const id of typeof ids === 'number' ? [ids] : ids) {
      this.ids.push(id);
      delta += this.step(false);
    }
    this.emitted += delta;
    return delta;
  }

  /** Emits whatever is still held back (an incomplete character, as U+FFFD); call once the sequence ends. */
  flush(): string {
    const delta = this.step(true);
    this.emitted += delta;
    return delta;
  }

  private step(final: boolean): string {
    const opts = { skipSpecialTokens: this.skipSpecialTokens };
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), opts);
    const newText = this.tokenizer.decode(this.ids.slice(this.prefixOffset), opts);
    if (!final && this.tokenizer.isByteFallbackToken?.(this.ids[this.ids.length - 1] as number)) return '';
    if (newText.length <= prefixText.length || (!final && newText.endsWith('\uFFFD'))) return '';
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return newText.slice(prefixText.length);
  }
}
