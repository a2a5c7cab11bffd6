import { hostByteLength } from '../../primitives/lazy-tensor.ts';
import type { DType, HostTensor, Tensor, WeightLoadOptions } from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { fillUniform } from './elementwise.ts';
import { GrowingBuffer } from './growing-buffer.ts';
import { declareKernel } from './kernel.ts';
import { type CudaTensor, DTYPE_BYTES, rowsCols } from './tensor.ts';
import type { WeightUploader } from './weight-upload.ts';
import { allocQuantizedX, type QuantizedX } from './x-form.ts';

/** kernels/fp8_weights.cu: each row of x `[rows, cols]` to e4m3 codes and its float32 scale (amax / 448). */
export const FP8_QUANTIZE_ROWS = declareKernel('fp8_weights', 'fp8_quantize_rows', {
  codes: 'ptr',
  scales: 'ptr',
  x: 'ptr',
  cols: 'i32',
});

/** kernels/fp8_weights.cu: the FP8 GEMM's epilogue, y = acc · row scale · column scale (+ bias, null: none). */
export const FP8_SCALE_ROWS = declareKernel('fp8_weights', 'fp8_scale_rows', {
  y: 'ptr',
  acc: 'ptr',
  rowScales: 'ptr',
  colScales: 'ptr',
  bias: 'ptr',
  cols: 'i32',
});

/** The oldest compute capability with FP8 tensor cores (Ada, sm_89). */
export const FP8_MIN_CC = { major: 8, minor: 9 };

export function hasFp8(info: { ccMajor: number; ccMinor: number }): boolean {
  return info.ccMajor * 10 + info.ccMinor >= FP8_MIN_CC.major * 10 + FP8_MIN_CC.minor;
}

/**
 * Whether a matrix of this shape can be stored as FP8: 2-D with both sides multiples of 16, as cuBLASLt's FP8
 * matmul needs for K and the output features (and the GEMV's 16-byte loads for K).
 */
export function fp8Fits(shape: readonly number[]): boolean {
  return shape.length === 2 && shape[0]! % 16 === 0 && shape[1]! % 16 === 0;
}

/**
 * Whether a backend with FP8 weights stores this one as FP8: asked for (`quantize: 'fp8'`) or stored so (an FP8
 * checkpoint's codes), not transposed, with sides `fp8Fits`; anything else loads in the compute dtype (an `f8_e4m3`
 * tensor dequantized through its row scales).
 */
export function storesFp8(w: HostTensor, opts?: WeightLoadOptions): boolean {
  const wanted = opts?.quantize === 'fp8' || w.dtype === 'f8_e4m3';
  return wanted && !opts?.transpose && fp8Fits(w.shape);
}

/** Device bytes of an FP8 matrix: one byte per value, a float32 scale per row, each part 256-byte aligned. */
export function fp8Bytes([rows, cols]: readonly number[]): number {
  const aligned = (n: number) => Math.ceil(n / 256) * 256;
  return aligned(rows! * cols!) + aligned(rows! * 4);
}

/**
 * An FP8 weight on the device: e4m3 codes `[rows, cols]` and one float32 scale per row (value = code · scale). Its
 * `dtype` is the activations' type it multiplies; only the linear layers read it (cuda() refuses it elsewhere).
 */
export class Fp8CudaTensor implements Tensor {
  constructor(
    readonly shape: readonly [number, number],
    readonly dtype: DType,
    readonly codes: DevPtr,
    readonly scales: DevPtr,
  ) {}
}

/** Quantizes each row of x `[rows, cols]` (the context's dtype) to codes `[rows, cols]` and `rows` scales. */
export function quantizeRows(ctx: CudaContext, codes: DevPtr, scales: DevPtr, x: DevPtr, rows: number, cols: number) {
  if (cols % 16) throw new Error(`fp8 quantize: ${cols} columns, expected a multiple of 16`);
  if (rows > 0) ctx.kernel(FP8_QUANTIZE_ROWS).launch([rows], ctx.rowThreads(cols), { codes, scales, x, cols });
}

/**
 * x's e4m3 codes and per-token scales for an FP8 linear: the ones its producer wrote beside it (an RMSNorm told it
 * feeds this linear, bit for bit these), else quantized now into the step arena.
 */
export function fp8Activations(ctx: CudaContext, x: CudaTensor): QuantizedX {
  if (x.quantized?.form === 'e4m3') return x.quantized;
  const [rows, cols] = rowsCols(x);
  const q = allocQuantizedX(ctx, 'e4m3', rows, cols);
  quantizeRows(ctx, q.xq, q.xs, x.ptr, rows, cols);
  return q;
}

/**
 * One reusable device buffer that a 16-bit weight passes through on its way to FP8 (grown to the largest); freed
 * once the model is loaded.
 */
export class Fp8Staging {
  private readonly buffer: GrowingBuffer;

  /** `uploader`: the backend's staging ring, which brings each weight here from its file (converted on the way). */
  constructor(
    ctx: CudaContext,
    readonly uploader: Pick<WeightUploader, 'upload' | 'uploadStored'>,
  ) {
    this.buffer = new GrowingBuffer(ctx.drv);
  }

  /** The buffer, at least `bytes` large; the stream is drained before a smaller one is replaced. */
  get(bytes: number): DevPtr {
    this.buffer.grow(bytes);
    return this.buffer.ptr;
  }

  release(): void {
    this.buffer.release();
  }
}

/**
 * A 2-D weight as FP8 in the weight slab: an `f8_e4m3` tensor's own codes and row scales uploaded as they are; any
 * other through `staging` in the compute dtype, then quantized per row on the device (fp8_quantize_rows); a dummy
 * tensor (no bytes) filled there with uniform values first (`seed`), so random FP8 weights never touch the host.
 */
export function loadFp8Weight(ctx: CudaContext, staging: Fp8Staging, w: HostTensor, seed: number): Fp8CudaTensor {
  if (!fp8Fits(w.shape)) throw new Error(`${w.name}: [${w.shape}] cannot be FP8 (sides must be multiples of 16)`);
  const [rows, cols] = w.shape as [number, number];
  const codes = ctx.weights.alloc(rows * cols);
  const scales = ctx.weights.alloc(rows * 4);
  const out = new Fp8CudaTensor([rows, cols], ctx.dtype, codes, scales);
  if (w.dtype === 'f8_e4m3') {
    if (w.rowScales?.length !== rows) throw new Error(`${w.name}: an f8_e4m3 tensor needs one scale per row`);
    staging.uploader.uploadStored(w, codes, rows * cols);
    ctx.drv.upload(scales, w.rowScales);
    return out;
  }
  const x = staging.get(rows * cols * DTYPE_BYTES[ctx.dtype]);
  if (hostByteLength(w) === 0) fillUniform(ctx, x, rows * cols, seed, 1 / Math.sqrt(cols));
  else staging.uploader.upload(w, x, ctx.dtype, false);
  quantizeRows(ctx, codes, scales, x, rows, cols);
  return out;
}
