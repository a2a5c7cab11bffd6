import { codecOf } from '../../primitives/quant/index.ts';
import { addBias, linearRows } from './matmul.ts';
import { ACT_BLOCK, ACT_TYPE, dequantizeActivations, quantizeActivations } from './quant-act.ts';
import { ROW_DOT, ROWS4_DOT } from './quant-dot.ts';
import type { QuantCpuTensor, QuantPart } from './quant-tensor.ts';
import { type RowSource, rowRange } from './row-source.ts';
import type { CpuThreads } from './threads.ts';
import { hasSimdKernel, wasmRows } from './wasm/kernels.ts';

/** Weight rows dequantized per batch of tokens (ROWS of them at a time), for the f32 kernel to reuse across tokens. */
const ROWS = 16;
/** From this many tokens on, dequantizing a row once beats taking every token's dot product from the blocks. */
const DEQUANTIZE_FROM_TOKENS = 4;
let scratch = new Float32Array(0);

/**
 * Whether T tokens meet `part` as dequantized weight rows times dequantized 8-bit activations in the f32 kernel:
 * the same products as the integer dot products, rounded in another order, and the row's dequantization paid once
 * for every token. Not where the SIMD kernels take the part (its blocks in an arena, its type with a kernel): their
 * integer dot products beat the f32 kernel at any T, the rows staying in cache across the tokens. Not for q8_1
 * activations (Q4_1, Q5_1) either, whose offset term takes s rounded to a half.
 */
export function viaFloatRows(part: Pick<QuantPart, 'type' | 'home'>, T: number): boolean {
  const simd = part.home !== undefined && hasSimdKernel(part.type);
  return T >= DEQUANTIZE_FROM_TOKENS && ACT_TYPE[part.type] !== 'q8_1' && !simd;
}

/**
 * What `part` multiplies: x `[T, n]` quantized to its type's activation type (quant-act.ts), as levels and scales
 * for the dot products from the blocks, or dequantized again for the f32 kernel (viaFloatRows).
 */
export function quantInput(
  part: Pick<QuantPart, 'type' | 'home'>,
  x: Float32Array,
  T: number,
  n: number,
): Float32Array {
  const act = ACT_TYPE[part.type];
  const acts = quantizeActivations(act, x, T, n);
  return viaFloatRows(part, T) ? dequantizeActivations(act, acts, T, n) : acts;
}

/** Rows [start, start + count) of a weight: one expert's matrix inside a stacked `[E · rows, cols]` one. */
export interface RowWindow {
  start: number;
  count: number;
}

/**
 * x `[T, n]` · wᵀ (+ bias) for a quantized weight `[m, n]`, or for the rows of it `window` names (an expert's, out
 * `[T, window.count]`): x is quantized once per activation type the parts need, then the rows are split over `pool`
 * when it is worth it, else computed on this thread, part after part (each part's rows follow the previous part's).
 */
export function linearQuantized(
  x: Float32Array,
  w: QuantCpuTensor,
  T: number,
  n: number,
  pool: CpuThreads | null,
  bias: Float32Array | null,
  window: RowWindow = { start: 0, count: w.shape[0] },
): Float32Array {
  const wn = w.shape[1];
  if (wn !== n) throw new Error(`linear: input has ${n} features, weight is [${w.shape}]`);
  const { start, count: m } = window;
  if (start < 0 || m < 0 || start + m > w.shape[0]) {
    throw new Error(`linear: rows ${start}..${start + m} outside a weight of [${w.shape}]`);
  }
  const out = new Float32Array(T * m);
  const inputs = new Map<string, Float32Array>();
  const inputOf = (part: QuantPart): Float32Array => {
    const key = `${ACT_TYPE[part.type]} ${viaFloatRows(part, T)}`;
    let input = inputs.get(key);
    if (!input) inputs.set(key, (input = quantInput(part, x, T, n)));
    return input;
  };
  // Each part's share of the window: its rows [r0, r1), whose row r lands in output column first + r.
  const shares: PartRows[] = [];
  let partFirst = 0;
  for (const p of w.parts) {
    const r0 = Math.max(0, start - partFirst);
    const r1 = Math.min(p.rows, start + m - partFirst);
    if (r0 < r1) shares.push({ part: p, first: partFirst - start, r0, r1 });
    partFirst += p.rows;
  }
  if (pool?.worthIt(T * n * m) && m >= 16) {
    pool.linearQuant(
      shares.map((s) => inputOf(s.part)),
      shares,
      out,
      T,
      n,
      m,
    );
  } else {
    for (const s of shares) linearQuantRows(inputOf(s.part), s.part, out, T, n, m, s.first, rowRange(s.r0, s.r1));
  }
  if (bias) addBias(out, bias, T, m);
  return out;
}

/** Rows [r0, r1) of a quantized part, part row r landing in output column first + r. */
export interface PartRows {
  part: QuantPart;
  first: number;
  r0: number;
  r1: number;
}

/**
 * The `rows` of one part of a quantized weight against `input` (quantInput's, for T tokens of n values):
 * out[t, first + r] = x[t] · row r, computed on thread `slot` (0 the caller, i worker i). Where the blocks lie in a
 * WebAssembly memory and the type has a SIMD kernel (wasm/kernels.ts), every token's dot products come straight
 * from the blocks there. Elsewhere a few tokens (decode) take quant-dot.ts's loops, bit-identical to the SIMD
 * kernels, and more tokens (prefill, batched decode) dequantize ROWS rows at a time and run the register-blocked f32
 * kernel over them, so the dequantization is paid once per row for the whole batch (except Q4_1/Q5_1, which always
 * take the dot products: see viaFloatRows). Every block type has a SIMD kernel; the other paths serve runtimes
 * without WebAssembly SIMD and blocks outside an arena.
 */
export function linearQuantRows(
  input: Float32Array,
  part: QuantPart,
  out: Float32Array,
  T: number,
  n: number,
  m: number,
  first: number,
  rows: RowSource,
  slot = 0,
): void {
  if (viaFloatRows(part, T)) rows((r0, r1) => dequantizedRows(input, part, out, T, n, m, first, r0, r1));
  else if (!part.home || !wasmRows(input, part.type, part.home, part.rowBytes, out, T, n, m, first, rows, slot)) {
    rows((r0, r1) => dotRows(input, part, out, T, n, m, first, r0, r1));
  }
}

/** quant-dot.ts's loops over rows r0..r1: the dot products straight from the blocks, in JavaScript. */
function dotRows(
  input: Float32Array,
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
  const { size, floats } = ACT_BLOCK[ACT_TYPE[part.type]];
  // The levels of all T rows come first, then each row's scale data.
  const scales = T * n;
  const perToken = (n / size) * floats;
  let r = r0;
  // Decode (one token) takes rows four at a time where the type has such a loop; its output row is contiguous.
  if (dot4 && T === 1) {
    for (; r + 4 <= r1; r += 4) dot4(q, s, r * part.rowBytes, part.rowBytes, input, 0, scales, n, out, first + r);
  }
  for (; r < r1; r++) {
    const off = r * part.rowBytes;
    for (let t = 0; t < T; t++) out[t * m + first + r] = dot(q, s, off, input, t * n, scales + t * perToken, n);
  }
}

function dequantizedRows(
  x: Float32Array,
  part: QuantPart,
  out: Float32Array,
  T: number,
  n: number,
  m: number,
  first: number,
  r0: number,
  r1: number,
): void {
  const c = codecOf(part.type);
  if (scratch.length < ROWS * n) scratch = new Float32Array(ROWS * n);
  for (let r = r0; r < r1; r += ROWS) {
    const rows = Math.min(ROWS, r1 - r);
    for (let i = 0; i < rows; i++) {
      const off = (r + i) * part.rowBytes;
      for (let b = 0; b < n / c.blockSize; b++) {
        c.dequantizeBlock(part.bytes, off + b * c.blockBytes, scratch, i * n + b * c.blockSize);
      }
    }
    // The f32 kernel over the scratch rows, its output columns shifted to this part's rows.
    linearRows(x, scratch, out.subarray(first + r), T, n, m, 0, rows);
  }
}
