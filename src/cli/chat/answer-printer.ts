import type { AnswerStats } from './answer-stats.ts';

/** What a chat backend streams: the answer's text, its thinking apart (when asked for), then its stats. */
export type ChatDelta = string | { thinking: string } | AnswerStats;

/**
 * Writes an answer as `ollama run` shows it: the thinking between "Thinking..." and "...done thinking." (nothing of
 * it with `hideThinking`), then the answer's text; keeps the text and the stats.
 */
export class AnswerPrinter {
  answer = '';
  /** The thinking, shown or not. */
  thought = '';
  stats: AnswerStats | null = null;
  /** Thinking shown and not closed yet; whether its text so far ends a line. */
  private thinking = false;
  private lineEnded = false;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly hideThinking = false,
  ) {}

  push(delta: ChatDelta): void {
    if (typeof delta === 'string') {
      if (this.thinking) this.out.write(this.lineEnded ? '...done thinking.\n\n' : '\n...done thinking.\n\n');
      this.thinking = false;
      this.out.write(delta);
      this.answer += delta;
    } else if ('thinking' in delta) {
      this.thought += delta.thinking;
      if (this.hideThinking) return;
      if (!this.thinking) this.out.write('Thinking...\n');
      this.thinking = true;
      this.out.write(delta.thinking);
      this.lineEnded = delta.thinking.endsWith('\n');
    } else {
      this.stats = delta;
    }
  }
}
