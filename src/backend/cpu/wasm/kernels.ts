import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import type { QuantType } from '../../../primitives/ggml-types.ts';
import { ACT_BLOCK, ACT_TYPE } from '../quant-act.ts';
import type { RowSource } from '../row-source.ts';
import { ACT_BYTES, OUT_ROWS, SLOTS, slotAt, WasmArena, type WasmHome } from './arena.ts';

/** One export of quant-dot.wat: `rows` rows from byte w against one packed activation row, f32 results at out. */
type Kernel = (w: number, rowBytes: number, rows: number, lv: number, ds: number, sums: number, out: number) => void;

/**
 * A four-token export (`q4_k_x4` and the like, for prefill): the rows against four packed activation rows, token t's
 * levels, scales and sums t strides after the first token's; row r's four results (token order) at out + 16r; 64 bytes
 * of scratch.
 */
type FourTokenKernel = (
  w: number,
  rowBytes: number,
  rows: number,
  lv: number,
  ds: number,
  sums: number,
  out: number,
  lvStride: number,
  dsStride: number,
  sumsStride: number,
  scratch: number,
) => void;

const FOUR_TOKENS = 4;

const compile = (binary: Uint8Array<ArrayBuffer>) =>
  WebAssembly.validate(binary) ? new WebAssembly.Module(binary) : null;

/**
 * quant-dot.wat assembled (bin/assemble-wasm.ts) twice: with WebAssembly SIMD alone, and with relaxed SIMD's 8-bit
 * dot product for the k-quants (1.4-1.7x on Q6_K and Q4_K rows), each null where this runtime cannot compile it. Node
 * 20's V8 validates relaxed SIMD only behind a flag (on by default from Node 22), so the flag is set before trying;
 * it only adds the relaxed opcodes to what validates, and the build uses them where their result is exact.
 */
export const SIMD_BUILDS = (() => {
  const relaxed = readFileSync(new URL('./quant-dot-relaxed.wasm', import.meta.url));
  if (!WebAssembly.validate(relaxed)) setFlagsFromString('--experimental-wasm-relaxed-simd');
  return { simd: compile(readFileSync(new URL('./quant-dot.wasm', import.meta.url))), relaxed: compile(relaxed) };
})();

/** The build the kernels run: relaxed SIMD where it compiles, else plain SIMD, else none (the JavaScript kernels). */
export const SIMD_MODULE: WebAssembly.Module | null = SIMD_BUILDS.relaxed ?? SIMD_BUILDS.simd;

/**
 * The weight types quant-dot.wat has a kernel for, by export name (any other takes the JavaScript kernels; the
 * four-token exports are named after their type).
 */
const KERNEL_TYPES = new Set(SIMD_MODULE ? WebAssembly.Module.exports(SIMD_MODULE).map((e) => e.name) : []);

/**
 * A new arena for one backend's quantized weights (its memories freed with them when the backend is dropped), or
 * null where the SIMD kernels cannot run.
 */
export function simdArena(): WasmArena | null {
  return SIMD_MODULE ? new WasmArena() : null;
}

/** Whether the backend's SIMD kernels take rows of `type` (in an arena). */
export function hasSimdKernel(type: QuantType): boolean {
  return KERNEL_TYPES.has(type);
}

/** This thread's instance of each build over each memory. */
type Exports = Record<string, (...args: number[]) => void>;
const instances = new WeakMap<WebAssembly.Module, WeakMap<WebAssembly.Memory, Exports>>();

function kernelsOf(module: WebAssembly.Module, memory: WebAssembly.Memory): Exports {
  let byMemory = instances.get(module);
  if (!byMemory) instances.set(module, (byMemory = new WeakMap()));
  let k = byMemory.get(memory);
  if (!k) {
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    byMemory.set(memory, (k = instance.exports as Exports));
  }
  return k;
}

/** Where one thread's packed activations lie: per token, levels, block scales and (q8_K) sums of levels. */
interface Packed {
  lv: number;
  ds: number;
  sums: number;
  /** Bytes from one token's levels, scales and sums to the next token's. */
  lvStride: number;
  dsStride: number;
  sumsStride: number;
}

const align16 = (x: number) => Math.ceil(x / 16) * 16;

/** f32 scale values per block the kernels read: d, and for q8_1 its s too. */
const scaleFloats = (type: QuantType) => (ACT_TYPE[type] === 'q8_1' ? 2 : 1);

/** Bytes of one token's packed activations (levels, scales, sums), with room for the three sections' alignment. */
function packedBytes(type: QuantType, n: number, tokens: number): number {
  const act = ACT_TYPE[type];
  const blocks = n / ACT_BLOCK[act].size;
  return tokens * (n + 4 * scaleFloats(type) * blocks + (act === 'q8_k' ? 48 * blocks : 0)) + 32;
}

/**
 * Packs tokens t0..t1 of T activation rows quantized by quant-act.ts (all rows' levels as floats, then each row's
 * block scale data) into slot `slot` of `memory` as the kernels read them: int8 levels, each block's d as f32 (q8_1:
 * d and s), and for q8_K each block's 16 sums of 16 levels and 8 sums of 32 as i16 (what the k-quants' mins and level
 * offsets multiply). The caller has checked that they fit the slot (packedBytes).
 */
function pack(
  memory: WebAssembly.Memory,
  slot: number,
  input: Float32Array,
  type: QuantType,
  T: number,
  n: number,
  t0: number,
  t1: number,
) {
  const act = ACT_TYPE[type];
  const { size, floats } = ACT_BLOCK[act];
  const blocks = n / size;
  const count = t1 - t0;
  const dsFloats = scaleFloats(type);
  const p: Packed = { lv: slotAt(slot), ds: 0, sums: 0, lvStride: n, dsStride: 4 * dsFloats * blocks, sumsStride: 0 };
  p.ds = p.lv + align16(count * n);
  p.sums = p.ds + align16(count * p.dsStride);
  if (act === 'q8_k') p.sumsStride = 48 * blocks;
  const buffer = memory.buffer;
  new Int8Array(buffer, p.lv, count * n).set(input.subarray(t0 * n, t1 * n));
  const ds = new Float32Array(buffer, p.ds, count * blocks * dsFloats);
  const sums = new Int16Array(buffer, p.sums, (count * p.sumsStride) / 2);
  for (let b = 0, s = T * n + t0 * blocks * floats; b < count * blocks; b++, s += floats) {
    for (let j = 0; j < dsFloats; j++) ds[dsFloats * b + j] = input[s + j]!;
    // q8_K's scale data is d, then the sums of each 16 levels: those (Q2_K's mins), then paired into sums of 32.
    for (let j = 0; act === 'q8_k' && j < 16; j++) sums[24 * b + j] = input[s + 1 + j]!;
    for (let j = 0; act === 'q8_k' && j < 8; j++) sums[24 * b + 16 + j] = input[s + 1 + 2 * j]! + input[s + 2 + 2 * j]!;
  }
  return p;
}

/**
 * Weight bytes one kernel call reads when several tokens take the same rows: small enough to stay in the core's L2
 * while each token of the group reads them again, so the group streams the weight from memory once.
 */
const CACHED_ROW_BYTES = 128 * 1024;

/**
 * The `rows` of a part whose blocks lie in an arena (`home`) against `input` (quant-act.ts's quantized rows, T
 * tokens of n values), through the SIMD kernels: out[t, first + r] = x[t] · row r, bit-identical to the JavaScript
 * dot-product loops. Thread `slot` packs the activations into its own scratch slot, so threads never share one; with
 * several tokens the rows go a few at a time (CACHED_ROW_BYTES), each token of a group (four at a time where the type
 * has a four-token kernel) taking them while they are in cache. False, having done nothing, when the type has no
 * kernel, the slot does not exist or one token's activations do not fit it. `module` picks a build other than the one
 * the backend runs (tests compare both).
 */
export function wasmRows(
  input: Float32Array,
  type: QuantType,
  home: WasmHome,
  rowBytes: number,
  out: Float32Array,
  T: number,
  n: number,
  m: number,
  first: number,
  rows: RowSource,
  slot: number,
  module = SIMD_MODULE,
): boolean {
  if (!module || !KERNEL_TYPES.has(type) || slot >= SLOTS) return false;
  const kernels = kernelsOf(module, home.memory);
  const kernel: Kernel = kernels[type]!;
  // Several tokens go four at a time where the type has a four-token kernel (each block unpacked once for the four),
  // the rest one at a time.
  const fourTokenKernel: FourTokenKernel | undefined = T > 1 ? kernels[`${type}_x4`] : undefined;
  // As many tokens as the slot's activations hold go at a time; where that is not all of them, a multiple of four
  // for a four-token kernel.
  let group = Math.min(T, Math.floor(ACT_BYTES / packedBytes(type, n, 1)));
  if (fourTokenKernel && group < T && group > FOUR_TOKENS) group -= group % FOUR_TOKENS;
  if (group === 0 || packedBytes(type, n, group) > ACT_BYTES) return false;
  const outAt = slotAt(slot) + ACT_BYTES;
  const scratch = outAt + 4 * OUT_ROWS;
  const results = new Float32Array(home.memory.buffer, outAt, OUT_ROWS);
  const rowsPerCall =
    T === 1 ? OUT_ROWS : Math.max(1, Math.min(OUT_ROWS / FOUR_TOKENS, Math.floor(CACHED_ROW_BYTES / rowBytes)));
  // The group of tokens packed in the slot: with one group, packed once for every range the thread takes.
  let packed: { t0: number; p: Packed } | null = null;
  rows((r0, r1) => {
    for (let t0 = 0; t0 < T; t0 += group) {
      const t1 = Math.min(T, t0 + group);
      if (packed?.t0 !== t0) packed = { t0, p: pack(home.memory, slot, input, type, T, n, t0, t1) };
      const { p } = packed;
      const { lvStride, dsStride, sumsStride } = p;
      for (let r = r0; r < r1; r += rowsPerCall) {
        const count = Math.min(rowsPerCall, r1 - r);
        const w = home.offset + r * rowBytes;
        // Token t's activations lie t - t0 strides into the group's.
        let t = t0;
        for (; fourTokenKernel && t + FOUR_TOKENS <= t1; t += FOUR_TOKENS) {
          const i = t - t0;
          fourTokenKernel(
            w,
            rowBytes,
            count,
            p.lv + i * lvStride,
            p.ds + i * dsStride,
            p.sums + i * sumsStride,
            outAt,
            lvStride,
            dsStride,
            sumsStride,
            scratch,
          );
          // A row's four results lie together: token t + j's are every fourth from the j-th.
          for (let j = 0; j < FOUR_TOKENS; j++) {
            const o = (t + j) * m + first + r;
            for (let x = 0; x < count; x++) out[o + x] = results[FOUR_TOKENS * x + j]!;
          }
        }
        for (; t < t1; t++) {
          const i = t - t0;
          kernel(w, rowBytes, count, p.lv + i * lvStride, p.ds + i * dsStride, p.sums + i * sumsStride, outAt);
          out.set(results.subarray(0, count), t * m + first + r);
        }
      }
    }
  });
  return true;
}
