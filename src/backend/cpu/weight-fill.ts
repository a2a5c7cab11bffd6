import { type DType, widen16 } from '../../primitives/host-tensor.ts';
import type { FileExtent } from '../../primitives/lazy-tensor.ts';
import { readRange } from '../../primitives/read-range.ts';

/** Stored float types by the index a fill job names them with. */
export const FILL_DTYPES: readonly DType[] = ['f32', 'bf16', 'f16'];

/** Values one claim fills: 1 MiB of f32, whose 16-bit source (512 KiB) is still in cache when it is widened. */
export const FILL_CHUNK = 1 << 18;

/** A weight's file runs as a fill job carries them: (descriptor, position, length) triples. */
export function runsOf(extents: readonly FileExtent[], into: Float64Array = new Float64Array(extents.length * 3)) {
  for (const [i, e] of extents.entries()) into.set([e.fd, e.position, e.length], i * 3);
  return into;
}

/** This thread's buffer for 16-bit values on their way to f32, reused by every claim. */
let staging = new Uint16Array(0);

/**
 * Values [start, end) of a weight stored as `dtype` in the file runs `runs` (runsOf's triples, `count` of them), read
 * by positioned reads straight into `out` (f32) or through this thread's staging buffer and widened (bf16, f16).
 */
export function fillValues(
  runs: Float64Array,
  count: number,
  dtype: DType,
  out: Float32Array,
  start: number,
  end: number,
): void {
  const width = dtype === 'f32' ? 4 : 2;
  if (width === 2 && staging.length < end - start) staging = new Uint16Array(Math.max(end - start, FILL_CHUNK));
  const bytes =
    width === 4
      ? new Uint8Array(out.buffer, out.byteOffset + start * 4, (end - start) * 4)
      : new Uint8Array(staging.buffer, 0, (end - start) * 2);
  const from = start * width;
  const to = end * width;
  for (let r = 0, at = 0; r < count && at < to; r++) {
    const [fd, position, length] = [runs[r * 3]!, runs[r * 3 + 1]!, runs[r * 3 + 2]!];
    const lo = Math.max(from, at);
    const hi = Math.min(to, at + length);
    if (lo < hi) readRange(fd, bytes.subarray(lo - from, hi - from), position + lo - at, `file descriptor ${fd}`);
    at += length;
  }
  if (dtype !== 'f32') widen16(dtype, staging.subarray(0, end - start), out.subarray(start, end));
}
