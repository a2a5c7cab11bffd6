import { E4M3, e4m3Bits } from '../../primitives/fp8.ts';
import { KV_QUANT_BLOCK, type KvQuant } from '../../primitives/kv-cache-type.ts';
import { codecOf, type QuantCodec } from '../../primitives/quant/index.ts';

/**
 * K or V of one layer's paged cache: per slot (block × block_size + offset) a row of num_kv_heads × head_dim values,
 * stored as f32 or quantized (kv-cache-type.ts). Writes quantize; readers take `rowsOf`, which hands back f32 rows
 * (the cache itself, or a dequantized copy of the rows a sequence reads), so attention has one code path.
 */
export interface KvPlane {
  readonly type: 'f32' | KvQuant;
  /** f32: the values; otherwise the rows' bytes, `rowUnits(type, row)` per slot. */
  readonly data: Float32Array | Uint8Array;
  /** fp8: a stored byte's value times `scale` is the value (1 otherwise). */
  readonly scale: number;
}

const codecs: Partial<Record<KvQuant, QuantCodec>> = { q8_0: codecOf('q8_0'), q4_0: codecOf('q4_0') };

/** Elements of `data` one slot's row of `row` values takes (floats for f32, else bytes). */
function rowUnits(type: KvPlane['type'], row: number): number {
  if (type === 'f32' || type === 'fp8') return row;
  return (row / KV_QUANT_BLOCK[type]) * codecs[type]!.blockBytes;
}

/** A zeroed plane of `slots` rows; in shared memory when worker threads will read it. */
export function allocPlane(type: KvPlane['type'], slots: number, row: number, shared: boolean, scale = 1): KvPlane {
  const units = slots * rowUnits(type, row);
  const bytes = type === 'f32' ? units * 4 : units;
  const buffer = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  return { type, data: type === 'f32' ? new Float32Array(buffer) : new Uint8Array(buffer), scale };
}

/** A plane over f32 values already in place (a cache with no quantization, or rows to read as one). */
export function f32Plane(values: Float32Array): KvPlane {
  return { type: 'f32', data: values, scale: 1 };
}

/** Stores token t's row `src[t * row ..]` at slot slotMapping[t]; slot -1 is padding and skipped. */
export function writeRows(plane: KvPlane, src: Float32Array, slotMapping: Int32Array, row: number): void {
  const units = rowUnits(plane.type, row);
  for (let t = 0; t < slotMapping.length; t++) {
    const slot = slotMapping[t]!;
    if (slot < 0) continue;
    const at = slot * units;
    if (plane.type === 'f32') {
      (plane.data as Float32Array).set(src.subarray(t * row, (t + 1) * row), at);
    } else if (plane.type === 'fp8') {
      const inv = 1 / plane.scale;
      for (let i = 0; i < row; i++) plane.data[at + i] = e4m3Bits(src[t * row + i]! * inv);
    } else {
      const codec = codecs[plane.type]!;
      for (let i = 0, b = at; i < row; i += codec.blockSize, b += codec.blockBytes) {
        codec.quantizeBlock(src, t * row + i, plane.data as Uint8Array, b);
      }
    }
  }
}

/**
 * The rows keys first..last of a sequence read, key j at cache slot `slots[j]`: returns the array to read and sets
 * `rowBase[j]` to where key j's row starts in it. An f32 plane is read in place; a quantized one is dequantized into
 * `scratch.values` (grown as needed), only over the values of KV heads g0..g1 (head_dim `D`), which are what the
 * caller reads.
 */
export function rowsOf(
  plane: KvPlane,
  slots: Int32Array,
  first: number,
  last: number,
  row: number,
  g0: number,
  g1: number,
  D: number,
  rowBase: Int32Array,
  scratch: { values: Float32Array },
): Float32Array {
  if (plane.type === 'f32') {
    for (let j = first; j <= last; j++) rowBase[j] = slots[j]! * row;
    return plane.data as Float32Array;
  }
  // Grown by a quarter over the need, so a decoding sequence's growth reallocates now and then, not every step.
  if (scratch.values.length < (last + 1) * row) scratch.values = new Float32Array(Math.ceil((last + 1) * 1.25) * row);
  const out = scratch.values;
  const bytes = plane.data as Uint8Array;
  const units = rowUnits(plane.type, row);
  if (plane.type === 'fp8') {
    const s = plane.scale;
    for (let j = first; j <= last; j++) {
      const at = slots[j]! * units;
      rowBase[j] = j * row;
      for (let i = g0 * D; i < g1 * D; i++) out[j * row + i] = E4M3[bytes[at + i]!]! * s;
    }
    return out;
  }
  const codec = codecs[plane.type]!;
  const n = codec.blockSize;
  const b0 = Math.floor((g0 * D) / n);
  const b1 = Math.ceil((g1 * D) / n);
  for (let j = first; j <= last; j++) {
    const at = slots[j]! * units;
    rowBase[j] = j * row;
    for (let b = b0; b < b1; b++) codec.dequantizeBlock(bytes, at + b * codec.blockBytes, out, j * row + b * n);
  }
  return out;
}

/** Copies `count` consecutive slots from slot `src` to slot `dst` (a block copy for copy-on-write). */
export function copySlots(plane: KvPlane, src: number, dst: number, count: number, row: number): void {
  const units = rowUnits(plane.type, row);
  plane.data.copyWithin(dst * units, src * units, (src + count) * units);
}

/**
 * Copies KV head g's values from slot `from` to slot `to` (SnapKV compaction). A block-quantized plane moves whole
 * blocks, so its heads must be whole blocks (`kvHeadMismatch`).
 */
export function moveHead(plane: KvPlane, from: number, to: number, g: number, D: number, row: number): void {
  const units = rowUnits(plane.type, row);
  const headUnits = rowUnits(plane.type, D);
  plane.data.copyWithin(to * units + g * headUnits, from * units + g * headUnits, from * units + (g + 1) * headUnits);
}
