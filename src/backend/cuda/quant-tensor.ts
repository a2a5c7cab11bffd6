import type { QuantType } from '../../primitives/ggml-types.ts';
import type { DType, Tensor } from '../backend.ts';
import type { DevPtr } from './driver.ts';
import { DTYPE_BYTES } from './tensor.ts';

/** Consecutive rows of a quantized weight on the device, stored as blocks of one type. */
export interface QuantCudaPart {
  readonly type: QuantType;
  readonly rows: number;
  /** `rows` rows of `rowBytes` bytes each, as the GGUF file stores them. */
  readonly ptr: DevPtr;
  readonly rowBytes: number;
}

/**
 * A `[rows, cols]` weight kept on the device as ggml blocks, uploaded as stored (the CPU's QuantCpuTensor on the
 * GPU): a packed q/k/v or gate/up whose parts were stored as different types keeps one part per type
 * (primitives/quant/stack.ts), and their outputs land side by side.
 */
export class QuantCudaTensor implements Tensor {
  constructor(
    readonly shape: readonly [number, number],
    /** The compute type of what this weight produces (linear's output, gathered embedding rows). */
    readonly dtype: DType,
    readonly parts: readonly QuantCudaPart[],
  ) {}

  /** Bytes of the blocks. */
  get byteLength(): number {
    return this.parts.reduce((a, p) => a + p.rows * p.rowBytes, 0);
  }

  /** Each part's first row: the first output column it writes, the first embedding row it holds. */
  get firstRows(): number[] {
    let first = 0;
    return this.parts.map((p) => {
      const at = first;
      first += p.rows;
      return at;
    });
  }
}

/** Rows of x up to which a quantized linear runs the GEMV that dequantizes in registers (above: dequantize + GEMM). */
export const QUANT_GEMV_MAX_ROWS = 8;

/** The quantized linear's path for `rows` rows of x: fixed by the row count alone, so a captured graph replays it. */
export function quantLinearPath(rows: number): 'gemv' | 'dequantize' {
  return rows <= QUANT_GEMV_MAX_ROWS ? 'gemv' : 'dequantize';
}

/**
 * How the decode GEMV multiplies. In 16-bit compute it quantizes x to 8 bits per 32 values once per linear and takes
 * integer dot products (llama.cpp's mmvq route: a quarter of the instructions per value of float products, which
 * left the GEMV bound by its instructions); the rounding it adds is about that of 16-bit activations. float32
 * compute keeps x exact (float products over the levels), as the reference the other dtypes are held to.
 */
export function quantGemvRoute(dtype: DType): 'q8' | 'float' {
  return dtype === 'f32' ? 'float' : 'q8';
}

/** The GEMV build for `rows` rows: its accumulators per lane, the next power of two (1, 2, 4, 8). */
export function quantGemvTmax(rows: number): 1 | 2 | 4 | 8 {
  if (rows < 1 || rows > QUANT_GEMV_MAX_ROWS) throw new Error(`quant_gemv: ${rows} rows, built for 1 to 8`);
  return (2 ** Math.ceil(Math.log2(rows))) as 1 | 2 | 4 | 8;
}

/**
 * The most bytes of a weight dequantized at a time on the prefill path: its rows go through the scratch in runs of
 * this size, each followed by its GEMM into its output columns (a whole LM head, 1 GiB for Llama-3-8B in bf16, needs
 * no scratch of its size). Measured on an H100 at 256 rows (bench/quant-gemv.ts): runs of 64 MB took 5-13% less
 * time than 32 MB (whose runs at least stay in L2) and half that of 8 MB: fewer, larger GEMMs win over L2 residency.
 */
export const QUANT_SCRATCH_BYTES = 64 << 20;

/**
 * Rows of a `cols`-wide weight per scratch run of at most `runBytes` (at least one row), a multiple of 256 bytes' worth
 * of output columns where a run holds that many: each run's GEMM writes at its first column, and cuBLASLt's
 * algorithms (picked once per shape) assume 256-byte-aligned outputs.
 */
export function scratchRows(cols: number, dtype: DType, runBytes = QUANT_SCRATCH_BYTES): number {
  const rows = Math.floor(runBytes / (cols * DTYPE_BYTES[dtype]));
  const align = 256 / DTYPE_BYTES[dtype];
  return rows >= align ? rows - (rows % align) : Math.max(1, rows);
}

/** Bytes of the dequantization scratch a quantized weight of `shape` needs: its rows per run, or all of them. */
export function dequantScratchBytes(
  shape: readonly [number, number],
  dtype: DType,
  runBytes = QUANT_SCRATCH_BYTES,
): number {
  return Math.min(shape[0], scratchRows(shape[1], dtype, runBytes)) * shape[1] * DTYPE_BYTES[dtype];
}

/** The scratch runs of a weight's parts: part index, first row within the part, rows; in output column order. */
export function scratchRuns(
  w: Pick<QuantCudaTensor, 'parts' | 'shape'>,
  dtype: DType,
  runBytes = QUANT_SCRATCH_BYTES,
): { part: number; row: number; rows: number }[] {
  const per = scratchRows(w.shape[1], dtype, runBytes);
  const runs: { part: number; row: number; rows: number }[] = [];
  w.parts.forEach((p, part) => {
    for (let row = 0; row < p.rows; row += per) runs.push({ part, row, rows: Math.min(per, p.rows - row) });
  });
  return runs;
}
