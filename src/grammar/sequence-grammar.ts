import type { GrammarService } from './grammar-service.ts';
import type { SlotState } from './shared-state.ts';

/** One sequence's matcher: the mask of its next token, then the token drawn. */
export class SequenceGrammar {
  private released = false;

  constructor(
    private readonly service: GrammarService,
    private readonly slot: number,
  ) {}

  /** Why this matcher is gone (its worker failed), or null: its request must fail, and only it. */
  get failure(): Error | null {
    return this.service.failureOf(this.slot);
  }

  /** Whether the next mask is already published (no wait). */
  get ready(): boolean {
    return this.service.isPublished(this.slot);
  }

  /** Whether its worker is compiling, so that waiting for an unpublished mask could take as long as a compile. */
  get blocked(): boolean {
    return this.service.isBlocked(this.slot);
  }

  /** The state after the last token, waiting for the worker if needed. */
  state(): SlotState {
    return this.service.waitFor(this.slot);
  }

  /** The allowed next tokens (valid until the next `accept`); call after `state()` says Running or Complete. */
  mask(): Int32Array {
    return this.service.mask(this.slot);
  }

  /** Records the drawn token; the worker advances and computes the next mask after the step's `flush()`. */
  accept(token: number): void {
    this.service.queueAccept(this.slot, token);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.service.release(this.slot);
  }
}
