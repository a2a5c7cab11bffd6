import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Resolves once `done()` returns true, asking once per turn of the event loop, so I/O and timers run between asks
 * (a wait on a device that would otherwise block the thread). `done` may throw to reject.
 */
export async function pollUntil(done: () => boolean): Promise<void> {
  while (!done()) await nextTurn();
}
