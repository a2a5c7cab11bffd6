import type { GatedActivation, Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import { actMul, addBias } from './elementwise.ts';
import { FP8_SCALE_ROWS, type Fp8CudaTensor, fp8Activations } from './fp8.ts';
import { FP8_GEMV_MAX_ROWS, type Fp8GemvChoice, fp8GemvInto, fp8RouteFor } from './fp8-gemv.ts';
import type { CudaLinear } from './linear.ts';
import { type CudaTensor, cuda, rowsCols } from './tensor.ts';
import type { QuantizedX, XForm } from './x-form.ts';

/**
 * Which path `rows` rows take against an FP8 weight: an FP8 GEMV (a decode step's few rows read each weight byte
 * once, no epilogue launch) up to FP8_GEMV_MAX_ROWS when one is enabled (`route`: CudaLinear.fp8Gemv), else
 * cuBLASLt's FP8 GEMM. The GEMM and the tensor-core GEMV quantize x per token the same way, so between them the path
 * changes the summation, not what is computed; the CUDA-core GEMV multiplies x as it is.
 */
export function fp8Path(rows: number, choice: Fp8GemvChoice | null): 'gemv' | 'gemm' {
  return choice && rows <= FP8_GEMV_MAX_ROWS ? 'gemv' : 'gemm';
}

/**
 * The form an FP8 linear reads `rows` rows of x in, which x's producer writes beside it (CudaLinear.inputForm): e4m3
 * codes and per-token scales for the GEMM and the tensor-core GEMV; none for the CUDA-core GEMV, which reads x itself.
 */
export function fp8InputForm(rows: number, choice: Fp8GemvChoice | null): XForm | null {
  return choice && fp8Path(rows, choice) === 'gemv' && fp8RouteFor(rows, choice) === 'cuda-cores' ? null : 'e4m3';
}

/** Decode rows through the route's GEMV: x itself on the CUDA cores, its e4m3 form on the tensor cores. */
function fp8GemvRows(
  linear: CudaLinear,
  y: bigint,
  x: CudaTensor,
  w: Fp8CudaTensor,
  T: number,
  n: number,
  opts: { gated?: boolean; act?: GatedActivation; bias?: bigint },
): void {
  const k = w.shape[1];
  if (fp8RouteFor(T, linear.fp8Gemv!) === 'cuda-cores')
    linear.fp8CudaCoreLauncher(T, n, k, opts)(y, x.ptr, w, opts.bias);
  else fp8GemvInto(linear.ctx, y, fp8Activations(linear.ctx, x), w, T, n, k, opts);
}

/** Columns of output one block of fp8_scale_rows covers (256 threads, 8 each). */
const SCALE_COLS_PER_BLOCK = 2048;

/** y[T, m] = x[T, n] · w[m, n]ᵀ (+ bias) for an FP8 weight (see `fp8Path`). */
export function fp8Linear(linear: CudaLinear, x: Tensor, w: Fp8CudaTensor, bias?: Tensor): Tensor {
  const ctx = linear.ctx;
  const xt = ctx.own(x);
  const [T, n] = rowsCols(xt);
  const [m, wn] = w.shape;
  if (wn !== n) throw new Error(`linear: input has ${n} features, FP8 weight is [${w.shape}]`);
  const out = ctx.empty([T, m]);
  if (T === 0) return out;
  const b = bias && cuda(bias).ptr;
  if (fp8Path(T, linear.fp8Gemv) === 'gemv') {
    fp8GemvRows(linear, out.ptr, xt, w, T, m, { bias: b });
    return out;
  }
  fp8Gemm(ctx, linear, out.ptr, fp8Activations(ctx, xt), w, T, b ?? 0n);
  return out;
}

/**
 * Decode rows: one gated FP8 GEMV (either route) writes act(gate) * up; otherwise the FP8 linear, then actMul,
 * writing its output in `form` too where asked (CudaLinear.linearActMul).
 */
export function fp8LinearActMul(
  linear: CudaLinear,
  x: Tensor,
  w: Fp8CudaTensor,
  bias: Tensor | undefined,
  act: GatedActivation,
  form: XForm | null = null,
): Tensor {
  const ctx = linear.ctx;
  const xt = ctx.own(x);
  const [T, n] = rowsCols(xt);
  const [m2, wn] = w.shape;
  if (T === 0 || fp8Path(T, linear.fp8Gemv) === 'gemm') return actMul(ctx, fp8Linear(linear, x, w, bias), act, form);
  if (wn !== n) throw new Error(`linearActMul: input has ${n} features, FP8 weight is [${w.shape}]`);
  const out = ctx.empty([T, m2 / 2]);
  fp8GemvRows(linear, out.ptr, xt, w, T, m2 / 2, { gated: true, act, bias: bias && cuda(bias).ptr });
  return out;
}

/**
 * The GEMM path: x's per-token codes and scales (fp8Activations), cuBLASLt's e4m3 × e4m3 product with fp32
 * accumulation. With `fp8CublasltScales` (the default) cuBLASLt applies the token and weight-row scales itself where
 * it can (outer-vector scale modes, cuBLAS 12.9+), the bias then in its own pass. Otherwise the product is written
 * unscaled as bf16 (the one 16-bit type whose range holds 448² · K), then fp8_scale_rows applies token scale ×
 * weight-row scale (+ bias), rounded once to the dtype.
 */
function fp8Gemm(
  ctx: CudaContext,
  linear: CudaLinear,
  y: bigint,
  x: QuantizedX,
  w: Fp8CudaTensor,
  T: number,
  bias: bigint,
): void {
  const [m, n] = w.shape;
  const { xq: codes, xs: scales } = x;
  if (ctx.settings.fp8CublasltScales) {
    const scaled = { x: scales, w: w.scales };
    if (linear.lt.matmulFp8Scaled(y, codes, w.codes, T, m, n, ctx.dtype, scaled)) {
      if (bias) addBias(ctx, y, bias, T, m);
      return;
    }
  }
  const acc = ctx.empty([T, m], 'bf16');
  linear.lt.matmul(acc.ptr, codes, w.codes, T, m, n, 'e4m3', 'bf16');
  ctx.kernel(FP8_SCALE_ROWS).launch([T, Math.ceil(m / SCALE_COLS_PER_BLOCK)], [256], {
    y,
    acc: acc.ptr,
    rowScales: scales,
    colScales: w.scales,
    bias,
    cols: m,
  });
}
