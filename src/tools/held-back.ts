/** Length of the longest tail of `text` that is a proper prefix of one of `markers` (it may still become one). */
export function partialMarkerLength(text: string, markers: readonly string[]): number {
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
