import type { AnswerStats } from './answer-stats.ts';

/** What a chat backend streams: the answer's text, its thinking apart (when asked for), then its stats. */
export type ChatDelta = string | { thinking: string } | AnswerStats;

/** Grey, bold grey and back to the terminal's default: how `ollama run` sets thinking apart on a terminal. */
const GREY = '\x1b[90m';
const BOLD_GREY = '\x1b[90;1m';
const RESET = '\x1b[0m';

/**
 * Writes an answer as `ollama run` shows it: the thinking between "Thinking..." and "...done thinking." (nothing of
 * it with `hideThinking`), in grey on a terminal (NO_COLOR unset), then the answer's text; keeps the text and the
 * stats.
 */
export class AnswerPrinter {
  answer = '';
  /** The thinking, shown or not. */
  thought = '';
  stats: AnswerStats | null = null;
  /** Thinking shown and not closed yet; whether its text so far ends a line. */
  private thinking = false;
  private lineEnded = false;
  private readonly color: boolean;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly hideThinking = false,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.color = Boolean((out as { isTTY?: boolean }).isTTY) && !env.NO_COLOR;
  }

  /** `text` in `style` on a colour terminal (reset after it), else as it is. */
  private styled(text: string, style: string): string {
    return this.color ? `${style}${text}${RESET}` : text;
  }

  push(delta: ChatDelta): void {
    if (typeof delta === 'string') {
      if (this.thinking) {
        const done = this.styled('...done thinking.', BOLD_GREY);
        this.out.write(`${this.lineEnded ? '' : '\n'}${done}\n\n`);
      }
      this.thinking = false;
      this.out.write(delta);
      this.answer += delta;
    } else if ('thinking' in delta) {
      this.thought += delta.thinking;
      if (this.hideThinking) return;
      if (!this.thinking) this.out.write(`${this.styled('Thinking...', BOLD_GREY)}\n`);
      this.thinking = true;
      this.out.write(this.styled(delta.thinking, GREY));
      this.lineEnded = delta.thinking.endsWith('\n');
    } else {
      this.stats = delta;
    }
  }
}
