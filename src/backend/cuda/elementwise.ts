import { encodeAs } from '../../primitives/float-bits.ts';
import {
  type Activation,
  checkColumnSplit,
  type DType,
  type GatedActivation,
  type ScaleFactorIn,
  type Tensor,
} from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { declareKernel } from './kernel.ts';
import { CudaTensor, cuda, DTYPE_BYTES, decodeFrom, rowsCols } from './tensor.ts';
import { type QuantizedX, quantizedOutput, type XForm, xFormArgs, xFormDefines } from './x-form.ts';

// kernels/elementwise.cu: grid-stride loops over 256-thread blocks (CudaContext.grid1d).
/**
 * ACT (common.cuh): 0 SiLU, 1 GELU's tanh form. The XQ builds (x-form.ts) also write the output quantized at xq / xs
 * (null in the plain build).
 */
export const ACT_MUL = declareKernel('elementwise', 'act_mul', {
  out: 'ptr',
  x: 'ptr',
  rows: 'i64',
  n: 'i32',
  xq: 'ptr',
  xs: 'ptr',
});
export const SPLIT_COLUMNS = declareKernel('elementwise', 'split_columns', {
  x: 'ptr',
  rows: 'i64',
  cols: 'i32',
  c0: 'i32',
  o0: 'ptr',
  o1: 'ptr',
  o2: 'ptr',
  o3: 'ptr',
  w0: 'i32',
  w1: 'i32',
  w2: 'i32',
  w3: 'i32',
});
export const ACTIVATION = declareKernel('elementwise', 'activation', { out: 'ptr', x: 'ptr', n: 'i64', act: 'i32' });

/** The `act` argument of elementwise.cu's `activation`. */
const ACTIVATION_CODE: Record<Activation, number> = { gelu: 0, gelu_tanh: 1, relu2: 2 };
export const TANH = declareKernel('elementwise', 'tanh_act', { out: 'ptr', x: 'ptr', n: 'i64' });
export const SCALE = declareKernel('elementwise', 'scale', { out: 'ptr', x: 'ptr', n: 'i64', factor: 'f32' });
export const SOFTCAP = declareKernel('elementwise', 'softcap', { out: 'ptr', x: 'ptr', n: 'i64', cap: 'f32' });

/** The defines of a gated activation (kernels/common.cuh `gate_act`): none for SiLU, ACT = 1 for GELU's tanh form. */
export function actDefines(act: GatedActivation): Record<string, number> {
  return act === 'silu' ? {} : { ACT: 1 };
}
/** B_F32 = 1: b is the float residual stream (addInputDefines). */
export const ADD = declareKernel('elementwise', 'add', { out: 'ptr', a: 'ptr', b: 'ptr', n: 'i64' });
export const ADD_BIAS = declareKernel('elementwise', 'add_bias', { y: 'ptr', bias: 'ptr', n: 'i64', cols: 'i32' });
export const FILL_UNIFORM = declareKernel('elementwise', 'fill_uniform', {
  p: 'ptr',
  n: 'i64',
  seed: 'u32',
  scale: 'f32',
});
export const FILL_CONST = declareKernel('elementwise', 'fill_const', { p: 'ptr', n: 'i64', value: 'f32' });

/**
 * The define of add's b (kernels/elementwise.cu B_F32): B_F32 for the float residual stream beside 16-bit storage;
 * none for a b stored as T (float32 storage's stream included: the same code), which the file's plain module serves.
 */
export function addInputDefines(b: DType, storage: DType): Record<string, number> {
  return b === 'f32' && storage !== 'f32' ? { B_F32: 1 } : {};
}

/** a + b in the storage type; either side may be the float residual stream. */
export function add(ctx: CudaContext, a: Tensor, b: Tensor): Tensor {
  let [x, y] = [cuda(a), cuda(b)];
  if (x.dtype !== ctx.dtype) [x, y] = [y, x];
  const out = ctx.empty(ctx.own(x).shape);
  const n = x.numel;
  const defines = addInputDefines(y.dtype, ctx.dtype);
  if (n > 0) ctx.kernel(ADD, defines).launch(ctx.grid1d(n), [256], { out: out.ptr, a: x.ptr, b: y.ptr, n });
  return out;
}

/** y[r, c] += bias[c] over `rows` x `cols`, in place. */
export function addBias(ctx: CudaContext, y: DevPtr, bias: DevPtr, rows: number, cols: number): void {
  ctx.kernel(ADD_BIAS).launch(ctx.grid1d(rows * cols), [256], { y, bias, n: rows * cols, cols });
}

/**
 * act(gate) * up of x [rows, 2n] (gate and up side by side) into out [rows, n]; with `q`, also quantized into it
 * (kernels/elementwise.cu XQ: e4m3 one block per row, q8 grid-stride as the plain build), in the same launch.
 */
export function actMulInto(
  ctx: CudaContext,
  out: DevPtr,
  x: DevPtr,
  rows: number,
  n: number,
  act: GatedActivation,
  q?: QuantizedX,
): void {
  const args = { out, x, rows, n, ...xFormArgs(q) };
  const kernel = ctx.kernel(ACT_MUL, { ...actDefines(act), ...xFormDefines(q?.form ?? null) });
  if (q?.form === 'e4m3') kernel.launch([rows], ctx.rowThreads(n), args);
  else kernel.launch(ctx.grid1d(rows * n), [256], args);
}

/** `form`: also write the output as the linear it feeds reads it (CudaLinear.inputForm), attached to it. */
export function actMul(ctx: CudaContext, x: Tensor, act: GatedActivation, form: XForm | null = null): Tensor {
  const xt = ctx.own(x);
  const [T, width] = rowsCols(xt);
  if (width % 2) throw new Error(`actMul: input [${xt.shape}] has an odd number of columns`);
  const n = width / 2;
  const out = quantizedOutput(ctx, [T, n], form);
  if (T * n > 0) actMulInto(ctx, out.ptr, xt.ptr, T, n, act, out.quantized);
  return out;
}

/** x times `factor`, rounded to the storage type first unless `factorIn` is 'float' (Backend.scale). */
export function scale(ctx: CudaContext, x: Tensor, factor: number, factorIn: ScaleFactorIn = 'storage'): Tensor {
  const xt = ctx.own(x);
  const out = ctx.empty(xt.shape);
  const rounded =
    factorIn === 'float'
      ? Math.fround(factor)
      : decodeFrom(encodeAs(Float32Array.of(factor), ctx.dtype), ctx.dtype)[0]!;
  if (xt.numel > 0) {
    ctx.kernel(SCALE).launch(ctx.grid1d(xt.numel), [256], { out: out.ptr, x: xt.ptr, n: xt.numel, factor: rounded });
  }
  return out;
}

/** cap * tanh(x / cap) elementwise. */
export function softcap(ctx: CudaContext, x: Tensor, cap: number): Tensor {
  const xt = ctx.own(x);
  const out = ctx.empty(xt.shape);
  if (xt.numel > 0)
    ctx.kernel(SOFTCAP).launch(ctx.grid1d(xt.numel), [256], { out: out.ptr, x: xt.ptr, n: xt.numel, cap });
  return out;
}

/** One row: views into x at byte offsets, no launch (decode). More rows: one copy launch per four parts. */
export function splitColumns(ctx: CudaContext, x: Tensor, sizes: readonly number[]): Tensor[] {
  const xt = ctx.own(x);
  const [T, width] = rowsCols(xt);
  checkColumnSplit(xt.shape, sizes);
  const elem = DTYPE_BYTES[ctx.dtype];
  if (T === 1) {
    let start = 0;
    return sizes.map((size) => {
      const part = new CudaTensor([1, size], ctx.dtype, xt.ptr + BigInt(start * elem));
      start += size;
      return part;
    });
  }
  const parts = sizes.map((size) => ctx.empty([T, size]));
  if (T === 0) return parts;
  const kernel = ctx.kernel(SPLIT_COLUMNS);
  for (let first = 0, c0 = 0; first < sizes.length; first += 4) {
    const w = (j: number) => sizes[first + j] ?? 0;
    const o = (j: number) => parts[first + j]?.ptr ?? 0n;
    const groupWidth = w(0) + w(1) + w(2) + w(3);
    kernel.launch(ctx.grid1d(T * groupWidth), [256], {
      x: xt.ptr,
      rows: T,
      cols: width,
      c0,
      o0: o(0),
      o1: o(1),
      o2: o(2),
      o3: o(3),
      w0: w(0),
      w1: w(1),
      w2: w(2),
      w3: w(3),
    });
    c0 += groupWidth;
  }
  return parts;
}

export function activation(ctx: CudaContext, x: Tensor, act: Activation): Tensor {
  const xt = ctx.own(x);
  const out = ctx.empty(xt.shape);
  const n = xt.numel;
  if (n > 0) {
    ctx.kernel(ACTIVATION).launch(ctx.grid1d(n), [256], { out: out.ptr, x: xt.ptr, n, act: ACTIVATION_CODE[act] });
  }
  return out;
}

/** A cross-encoder head's activation. */
export function tanh(ctx: CudaContext, x: Tensor): Tensor {
  const xt = ctx.own(x);
  const out = ctx.empty(xt.shape);
  if (xt.numel > 0) ctx.kernel(TANH).launch(ctx.grid1d(xt.numel), [256], { out: out.ptr, x: xt.ptr, n: xt.numel });
  return out;
}

/** `n` elements at `p` set to `value` (dummy norm weights and biases). */
export function fillConst(ctx: CudaContext, p: DevPtr, n: number, value: number): void {
  ctx.kernel(FILL_CONST).launch(ctx.grid1d(n), [256], { p, n, value });
}

/** `n` elements at `p` uniform in [-scale, scale) from a hash of (seed, index) (dummy matrices). */
export function fillUniform(ctx: CudaContext, p: DevPtr, n: number, seed: number, scale: number): void {
  ctx.kernel(FILL_UNIFORM).launch(ctx.grid1d(n), [256], { p, n, seed, scale });
}
