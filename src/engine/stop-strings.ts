/**
 * Stop strings are matched on the generated text, so they are caught when split across tokens. Text that could still
 * become a stop string is held back from the stream, and a matched stop string is not emitted (unless the request
 * keeps it).
 */

/** The earliest stop string that ends at or after `newFrom` (the length of the text before this token). */
export function findStop(
  text: string,
  stops: readonly string[],
  newFrom: number,
): { index: number; stop: string } | null {
  let best: { index: number; stop: string } | null = null;
  for (const stop of stops) {
    const i = text.indexOf(stop, Math.max(0, newFrom - stop.length + 1));
    if (i >= 0 && (!best || i < best.index)) best = { index: i, stop };
  }
  return best;
}
