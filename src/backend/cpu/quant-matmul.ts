import { ROW_DOT, ROWS4_DOT } from './quant-dot.ts';
import type { QuantPart } from './quant-tensor.ts';

/** out = x · wᵀ on this thread, part after part (each part's rows follow the previous part's). */
export function linearQuantParts(
  x: Float32Array,
  xs: Float32Array,
  parts: readonly QuantPart[],
  out: Float32Array,
  T: number,
  n: number,
  m: number,
): void {
  let first = 0;
  for (const p of parts) {
    linearQuantRows(x, xs, p, out, T, n, m, first, 0, p.rows);
    first += p.rows;
  }
}

/**
 * Rows r0..r1 of one part of a quantized weight against x `[T, n]`: out[t, first + r] = x[t] · row r, each dot
 * taken straight from the blocks (quant-dot.ts). `xs` holds x's 16-value sums (sums16), shared by every part.
 */
export function linearQuantRows(
  x: Float32Array,
  xs: Float32Array,
  part: QuantPart,
  out: Float32Array,
  T: number,
  n: number,
  m: number,
  first: number,
  r0: number,
  r1: number,
): void {
  const dot = ROW_DOT[part.type];
  const q = part.bytes;
  const s = new Int8Array(q.buffer, q.byteOffset, q.byteLength);
  const dot4 = ROWS4_DOT[part.type];
  let r = r0;
  // Decode (one token) takes rows four at a time where the type has such a loop; its output row is contiguous.
  if (dot4 && T === 1) {
    for (; r + 4 <= r1; r += 4) dot4(q, s, r * part.rowBytes, part.rowBytes, x, 0, n, out, first + r);
  }
  for (; r < r1; r++) {
    const off = r * part.rowBytes;
    for (let t = 0; t < T; t++) out[t * m + first + r] = dot(q, s, off, x, t * n, xs, (t * n) / 16, n);
  }
}
