import type { ResponseEvent } from './responses-output.ts';

/** A streamed event as sent: numbered. */
export type NumberedEvent = ResponseEvent & { sequence_number: number };

/**
 * A background response while it generates (the Responses API's `background: true`): the response as it stands for
 * GET, the controller that cancels it, and, when it was asked to stream, its events so far, which a client that went
 * away picks up again with GET ?stream=true&starting_after=N.
 */
export class BackgroundRun {
  /** The response as it stands: queued, then in progress with the output so far. */
  response: Record<string, unknown>;
  readonly events: NumberedEvent[] = [];
  private readonly followers = new Set<(e: NumberedEvent | null) => void>();
  private ended = false;
  private readonly endWaiters: (() => void)[] = [];

  constructor(
    /** Aborts the generation (the request's admission holds it too, so a shutdown aborts it as well). */
    private readonly controller: AbortController,
    queued: Record<string, unknown>,
    /** Whether its events are kept (a background response created with `stream`). */
    readonly streamed: boolean,
  ) {
    this.response = queued;
  }

  get cancelled(): boolean {
    return this.controller.signal.aborted;
  }

  cancel(): void {
    this.controller.abort(new Error('cancelled'));
  }

  /** An event as it is sent, for followers (and for later ones, when kept: as it was then, not as its items grew). */
  record(event: NumberedEvent): void {
    if (this.streamed) this.events.push(structuredClone(event));
    for (const follow of this.followers) follow(event);
  }

  /** The run is over (its final response stored): followers are told, waiters go on. */
  end(): void {
    this.ended = true;
    for (const follow of this.followers) follow(null);
    this.followers.clear();
    for (const wake of this.endWaiters.splice(0)) wake();
  }

  /** Resolves when the run is over. */
  whenEnded(): Promise<void> {
    return this.ended ? Promise.resolve() : new Promise((resolve) => this.endWaiters.push(resolve));
  }

  /**
   * The events numbered past `after`, then each new one as it is sent, then null at the end; the returned function
   * stops following.
   */
  follow(after: number, fn: (e: NumberedEvent | null) => void): () => void {
    for (const e of this.events) if (e.sequence_number > after) fn(e);
    if (this.ended) {
      fn(null);
      return () => {};
    }
    this.followers.add(fn);
    return () => this.followers.delete(fn);
  }
}
