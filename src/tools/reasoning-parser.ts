import { heldBackLength } from '../util/held-back.ts';

export const THINK_START = '<think>';
export const THINK_END = '</think>';

export interface ReasoningDelta {
  reasoning: string;
  content: string;
}

/**
 * Splits a thinking model's output into reasoning and content as it streams (Qwen3 and the DeepSeek-R1 distills:
 * `<think>…</think>` first). When the prompt already opened the block (the template ends with `<think>`), the output
 * starts inside it. Text that may be the start of a tag is held back until it is known not to be.
 */
export class ReasoningParser {
  private buffer = '';
  /** `closed`: just after </think>, where the newlines a template writes belong to neither part. */
  private state: 'start' | 'reasoning' | 'closed' | 'content';

  constructor(startsInReasoning: boolean) {
    this.state = startsInReasoning ? 'reasoning' : 'start';
  }

  push(text: string, final = false): ReasoningDelta {
    this.buffer += text;
    const out: ReasoningDelta = { reasoning: '', content: '' };
    for (;;) {
      if (this.state === 'start') {
        const trimmed = this.buffer.trimStart();
        if (trimmed.startsWith(THINK_START)) {
          this.buffer = trimmed.slice(THINK_START.length);
          this.state = 'reasoning';
          continue;
        }
        if (!final && THINK_START.startsWith(trimmed)) return out;
        this.state = 'content';
      }
      if (this.state === 'reasoning') {
        const end = this.buffer.indexOf(THINK_END);
        if (end >= 0) {
          out.reasoning += this.buffer.slice(0, end);
          this.buffer = this.buffer.slice(end + THINK_END.length);
          this.state = 'closed';
          continue;
        }
        const keep = final ? 0 : heldBackLength(this.buffer, [THINK_END]);
        out.reasoning += this.buffer.slice(0, this.buffer.length - keep);
        this.buffer = this.buffer.slice(this.buffer.length - keep);
        return out;
      }
      if (this.state === 'closed') {
        this.buffer = this.buffer.replace(/^\n+/, '');
        if (!this.buffer) return out;
        this.state = 'content';
      }
      out.content += this.buffer;
      this.buffer = '';
      return out;
    }
  }

  /** Whether text is held that may yet turn out to be content (what may be the start of `<think>`). */
  get holdsContent(): boolean {
    return this.state === 'start' && this.buffer !== '';
  }

  /** The rest, at the end of the output. */
  finish(): ReasoningDelta {
    return this.push('', true);
  }
}
