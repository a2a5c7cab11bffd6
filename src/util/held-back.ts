/**
 * Length of the longest tail of `text` that is a proper prefix of one of `markers` (a stop string, a tool-call or
 * reasoning tag): text that may still become one, so it is not safe to stream yet.
 */
export function heldBackLength(text: string, markers: readonly string[]): number {
  let held = 0;
  for (const m of markers) {
    for (let k = Math.min(m.length - 1, text.length); k > held; k--) {
      if (text.endsWith(m.slice(0, k))) {
        held = k;
        break;
      }
    }
  }
  return held;
}
