import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';

export interface PollOptions {
  /** Asks made on consecutive turns of the event loop before backing off to timers (a short wait is noticed at once). */
  eagerAsks?: number;
  /** Milliseconds between later asks (Node's timers fire at 1 ms granularity at best). */
  intervalMs?: number;
}

/**
 * Resolves once `done()` returns true, without blocking the thread (a wait on a device): the first asks come on
 * consecutive turns of the event loop, then one per short timer, so a long wait does not keep a core busy turning an
 * otherwise idle event loop. I/O, immediates and timers run between asks. `done` may throw to reject.
 */
export async function pollUntil(done: () => boolean, opts: PollOptions = {}): Promise<void> {
  const { eagerAsks = 16, intervalMs = 1 } = opts;
  for (let asks = 1; !done(); asks++) {
    if (asks < eagerAsks) await nextTurn();
    else await sleep(intervalMs);
  }
}
