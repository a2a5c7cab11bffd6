import type { QuantType } from '../../primitives/ggml-types.ts';
import type { HostTensor } from '../../primitives/host-tensor.ts';
import { codecOf } from '../../primitives/quant/index.ts';
import { quantStackGroups, readGroupBlocks } from '../../primitives/quant/stack.ts';
import type { Tensor } from '../backend.ts';
import type { WasmArena, WasmHome } from './wasm/arena.ts';

/** Consecutive rows of a quantized matrix stored as blocks of one type. */
export interface QuantPart {
  readonly type: QuantType;
  readonly rows: number;
  /** `rows` rows of `rowBytes` bytes each, in shared memory when worker threads read them. */
  readonly bytes: Uint8Array;
  readonly rowBytes: number;
  /** Where `bytes` lie in a WebAssembly memory, when they do (the SIMD kernels then read them there). */
  readonly home?: WasmHome;
}

/**
 * A `[rows, cols]` weight kept as ggml blocks, rows independent (cols along the blocks). A packed weight (q/k/v,
 * gate/up) whose parts were stored as different types (llama.cpp's mixes give v more bits than q and k) keeps one
 * part per type; parts of one type are joined.
 */
export class QuantCpuTensor implements Tensor {
  /** The compute type of what this weight produces (linear's output, gathered embedding rows). */
  readonly dtype = 'f32' as const;
  constructor(
    readonly shape: readonly [number, number],
    readonly parts: readonly QuantPart[],
  ) {}

  /** Bytes of the blocks (what the weight takes in memory). */
  get byteLength(): number {
    return this.parts.reduce((a, p) => a + p.bytes.byteLength, 0);
  }

  /** Dequantizes row `r` into `out[o .. o + cols)` (an embedding lookup). */
  dequantizeRow(r: number, out: Float32Array, o: number): void {
    let first = 0;
    for (const p of this.parts) {
      if (r < first + p.rows) {
        const c = codecOf(p.type);
        const start = (r - first) * p.rowBytes;
        for (let b = 0; b < this.shape[1] / c.blockSize; b++) {
          c.dequantizeBlock(p.bytes, start + b * c.blockBytes, out, o + b * c.blockSize);
        }
        return;
      }
      first += p.rows;
    }
    throw new Error(`row ${r} outside a quantized weight of ${first} rows`);
  }
}

/**
 * Stacks 2-D quantized host tensors (same column count) into one QuantCpuTensor, one part per run of a type
 * (quantStackGroups), their blocks read (from the file, for lazy tensors) into `arena`'s WebAssembly memories when
 * given (shared, and read by the SIMD kernels), else into shared memory when worker threads will read them.
 */
export function stackQuantized(
  parts: readonly HostTensor[],
  shared: boolean,
  arena: WasmArena | null = null,
): QuantCpuTensor {
  const alloc = (n: number): { bytes: Uint8Array; home?: WasmHome } => {
    const placed = arena?.allocate(n);
    if (placed) return { bytes: placed.view, home: placed.home };
    return { bytes: shared ? new Uint8Array(new SharedArrayBuffer(n)) : new Uint8Array(n) };
  };
  const out = quantStackGroups(parts).map((g): QuantPart => {
    const { bytes, home } = alloc(g.rows * g.rowBytes);
    let at = 0;
    for (const h of g.hosts) at += readGroupBlocks(h, g, bytes.subarray(at));
    return { type: g.type, rows: g.rows, bytes, rowBytes: g.rowBytes, home };
  });
  return new QuantCpuTensor([out.reduce((a, p) => a + p.rows, 0), parts[0]!.shape[1]!], out);
}
