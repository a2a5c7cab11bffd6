import { bf16Bits, f16Bits } from './float-bits.ts';
import { widen16 } from './host-tensor.ts';

/** The weight dtypes a LoRA merge takes, by index (the worker threads' job parameter). */
export const LORA_DTYPES = ['f32', 'f16', 'bf16'] as const;
export type LoraDtype = (typeof LORA_DTYPES)[number];

/**
 * Runs a whole merge's rows (mergeLoraRows over [0, rows)), perhaps split over threads: its operands are then in
 * shared memory (the CPU backend's pool, backend/cpu/threads.ts `threadedLoraMerge`).
 */
export interface LoraMergePool {
  mergeRows(
    w: Uint8Array,
    dtype: LoraDtype,
    at: Float64Array,
    fb: Float64Array,
    scale: number,
    rows: number,
    cols: number,
    rank: number,
  ): void;
}

/** Rows a merge handles at a time: one chunk's float32 copy stays small. */
export const LORA_CHUNK_ROWS = 64;

/** A 16-bit chunk's float32 copy, kept between chunks (each thread has its own). */
let scratch = new Float32Array(0);

/**
 * Rows [start, end) of W += scale · B A, in place on W's bytes (`w`, [rows, cols] of `dtype`, 4-byte aligned): each
 * product summed over the rank in float64 in rank order, added to W's value in float64 and rounded once to float32,
 * then to W's dtype. `at` is A transposed ([cols, rank]) and `fb` is B ([rows, rank]), both float64. Every row is
 * computed the same way whatever rows a call is given, so the result does not depend on how threads split them.
 */
export function mergeLoraRows(
  w: Uint8Array,
  dtype: LoraDtype,
  at: Float64Array,
  fb: Float64Array,
  scale: number,
  cols: number,
  rank: number,
  start: number,
  end: number,
): void {
  for (let s = start; s < end; s += LORA_CHUNK_ROWS) {
    const e = Math.min(end, s + LORA_CHUNK_ROWS);
    const n = (e - s) * cols;
    if (dtype === 'f32') {
      sumRows(new Float32Array(w.buffer, w.byteOffset + s * cols * 4, n), at, fb.subarray(s * rank), scale, cols, rank);
      continue;
    }
    const half = new Uint16Array(w.buffer, w.byteOffset + s * cols * 2, n);
    if (scratch.length < n) scratch = new Float32Array(n);
    const x = scratch.subarray(0, n);
    widen16(dtype, half, x);
    sumRows(x, at, fb.subarray(s * rank), scale, cols, rank);
    const bits = dtype === 'bf16' ? bf16Bits : f16Bits;
    for (let i = 0; i < n; i++) half[i] = bits(x[i]!);
  }
}

/**
 * x[r] += scale · (B A)[r] for every row of x (float32), B's rows from `fb`. Four rows at a time against A
 * transposed, so each value of A read feeds four sums (about 2x one row at a time on V8); each sum runs over the
 * rank in order either way.
 */
function sumRows(x: Float32Array, at: Float64Array, fb: Float64Array, scale: number, cols: number, rank: number) {
  const rows = x.length / cols;
  let o = 0;
  for (; o + 4 <= rows; o += 4) {
    const [b0, b1, b2, b3] = [0, 1, 2, 3].map((r) => (o + r) * rank) as [number, number, number, number];
    const row = o * cols;
    for (let i = 0; i < cols; i++) {
      let d0 = 0;
      let d1 = 0;
      let d2 = 0;
      let d3 = 0;
      for (let k = 0, j = i * rank; k < rank; k++, j++) {
        const a = at[j]!;
        d0 += fb[b0 + k]! * a;
        d1 += fb[b1 + k]! * a;
        d2 += fb[b2 + k]! * a;
        d3 += fb[b3 + k]! * a;
      }
      x[row + i] = x[row + i]! + scale * d0;
      x[row + cols + i] = x[row + cols + i]! + scale * d1;
      x[row + 2 * cols + i] = x[row + 2 * cols + i]! + scale * d2;
      x[row + 3 * cols + i] = x[row + 3 * cols + i]! + scale * d3;
    }
  }
  for (; o < rows; o++) {
    for (let i = 0; i < cols; i++) {
      let d = 0;
      for (let k = 0, j = i * rank; k < rank; k++, j++) d += fb[o * rank + k]! * at[j]!;
      x[o * cols + i] = x[o * cols + i]! + scale * d;
    }
  }
}
