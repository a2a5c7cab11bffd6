import { HALF } from '../../../primitives/quant/codec.ts';

/**
 * Shared WebAssembly memories that hold quantized weights' blocks, so the SIMD kernels (kernels.ts) read them where
 * they lie: no second copy. A wasm32 instance addresses one memory of at most 4 GiB, and an 8B model's blocks are
 * about 4.9 GB, so the blocks are spread over several memories of at most 2 GiB each (every byte offset stays a
 * non-negative i32 on the JavaScript side); a part's blocks never straddle two. Each memory is laid out as:
 *
 * - [0, 256 KiB): the f32 value of every half (a block's scale is one load);
 * - SLOTS scratch slots, one per thread (the caller is slot 0, worker i slot i): the activations packed for the
 *   kernels, then the rows' outputs, then the per-token sums of a four-token kernel;
 * - the blocks, appended part by part as weights load, the memory grown to fit.
 *
 * `.buffer` is a SharedArrayBuffer: the JavaScript kernels, the embedding gather and worker threads read the same
 * bytes through ordinary views.
 */
const PAGE = 65536;
const MAX_PAGES = 32768;
const HALF_BYTES = 65536 * 4;
/** Threads with a scratch slot; a thread beyond these takes the JavaScript kernels. */
export const SLOTS = 16;
/** Bytes of one slot's packed activations (int8 levels, f32 block scales, i16 sums: about 1.2 bytes a value). */
export const ACT_BYTES = 256 * 1024;
/** Rows one kernel call writes into a slot's output before they are copied out. */
export const OUT_ROWS = 16384;
/** Bytes after a slot's outputs where a four-token kernel keeps each token's sums. */
const SCRATCH_BYTES = 64;
const SLOT_BYTES = ACT_BYTES + OUT_ROWS * 4 + SCRATCH_BYTES;
const BLOCKS_AT = HALF_BYTES + SLOTS * SLOT_BYTES;
/** Blocks start at multiples of this. */
const ALIGN = 64;

/** Where a part's blocks lie in an arena. */
export interface WasmHome {
  readonly memory: WebAssembly.Memory;
  readonly offset: number;
}

/**
 * Byte offset of slot `slot`'s packed activations in every memory; its outputs follow at + ACT_BYTES, its scratch at
 * + ACT_BYTES + 4 · OUT_ROWS.
 */
export function slotAt(slot: number): number {
  return HALF_BYTES + slot * SLOT_BYTES;
}

export class WasmArena {
  private readonly memories: WebAssembly.Memory[] = [];
  /** The first free byte of each memory. */
  private readonly ends: number[] = [];

  /** Largest part that fits one memory. */
  static readonly maxPartBytes = MAX_PAGES * PAGE - BLOCKS_AT;

  /**
   * `bytes` bytes of zeros in the last memory with room (a new memory when none has), or null when too large or
   * when the runtime will not reserve another memory (the caller then keeps the blocks in ordinary memory).
   */
  allocate(bytes: number): { home: WasmHome; view: Uint8Array } | null {
    if (bytes > WasmArena.maxPartBytes) return null;
    let i = this.memories.length - 1;
    if (i < 0 || this.ends[i]! + bytes > MAX_PAGES * PAGE) i = this.addMemory();
    if (i < 0) return null;
    const memory = this.memories[i]!;
    const offset = this.ends[i]!;
    const end = offset + bytes;
    const have = memory.buffer.byteLength;
    if (end > have) memory.grow(Math.ceil((end - have) / PAGE));
    this.ends[i] = Math.ceil(end / ALIGN) * ALIGN;
    return { home: { memory, offset }, view: new Uint8Array(memory.buffer, offset, bytes) };
  }

  /** Index of a new memory, or −1 when the runtime refuses to reserve one (its address space for them is spent). */
  private addMemory(): number {
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: Math.ceil(BLOCKS_AT / PAGE), maximum: MAX_PAGES, shared: true });
    } catch (e) {
      if (e instanceof RangeError) return -1;
      throw e;
    }
    new Float32Array(memory.buffer, 0, 65536).set(HALF);
    this.memories.push(memory);
    this.ends.push(BLOCKS_AT);
    return this.memories.length - 1;
  }
}
