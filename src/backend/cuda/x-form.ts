import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { CudaTensor, rowsCols } from './tensor.ts';

/**
 * The quantized forms a linear layer reads its input in, besides x itself: `q8`, 8 bits per 32 values for the
 * integer decode GEMV over GGUF blocks (kernels/q8_act.cuh); `e4m3`, FP8 codes with a float32 scale per token for
 * FP8 weights (kernels/fp8_weights.cu fp8_quantize_rows).
 */
export type XForm = 'q8' | 'e4m3';

/**
 * x `[rows, cols]` in a quantized form, in the step arena: `xq` the levels or codes (a byte per value), `xs` the
 * scales (a q8_scale per 32 values, or a float32 per row).
 */
export interface QuantizedX {
  form: XForm;
  xq: DevPtr;
  xs: DevPtr;
}

/** Bytes of a q8_scale (kernels/q8_scale.cuh): d and two level sums. */
const Q8_SCALE_BYTES = 8;

/** Whether rows of `cols` values take the form: whole 32-value groups (q8), whole 16-byte vectors (e4m3). */
export function formFits(form: XForm, cols: number): boolean {
  return cols % (form === 'q8' ? 32 : 16) === 0;
}

/** Room in the step arena for `rows` rows of `cols` values in `form`. */
export function allocQuantizedX(ctx: CudaContext, form: XForm, rows: number, cols: number): QuantizedX {
  if (!formFits(form, cols)) throw new Error(`x in ${form}: ${cols} columns do not fit its groups`);
  const scaleBytes = form === 'q8' ? ((rows * cols) / 32) * Q8_SCALE_BYTES : rows * 4;
  return { form, xq: ctx.arena.alloc(rows * cols), xs: ctx.arena.alloc(scaleBytes) };
}

/**
 * The output tensor `[rows, n]` of an op that writes the linear's input form beside it (an RMSNorm, the gated
 * product), with room for the quantized copy when `form` asks for one (CudaLinear.inputForm).
 */
export function quantizedOutput(ctx: CudaContext, shape: readonly number[], form: XForm | null): CudaTensor {
  const out = ctx.empty(shape);
  const [rows, n] = rowsCols(out);
  if (!form || rows === 0) return out;
  return new CudaTensor(out.shape, out.dtype, out.ptr, allocQuantizedX(ctx, form, rows, n));
}

/** The XQ define of the producers' builds (kernels/norm.cu, elementwise.cu act_mul): none for the plain build. */
export function xFormDefines(form: XForm | null): Record<string, number> {
  return form ? { XQ: form === 'q8' ? 1 : 2 } : {};
}

/** The producers' kernel arguments for the quantized copy (0n: the plain build writes none). */
export function xFormArgs(q: QuantizedX | undefined): { xq: DevPtr; xs: DevPtr } {
  return { xq: q?.xq ?? 0n, xs: q?.xs ?? 0n };
}
