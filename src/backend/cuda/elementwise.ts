import { checkColumnSplit, type Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { CudaTensor, cuda, DTYPE_BYTES, rowsCols } from './tensor.ts';

/** a + b in the storage type; either side may be the float residual stream. */
export function add(ctx: CudaContext, a: Tensor, b: Tensor): Tensor {
  let [x, y] = [cuda(a), cuda(b)];
  if (x.dtype !== ctx.dtype) [x, y] = [y, x];
  const out = ctx.empty(ctx.own(x).shape);
  const n = x.numel;
  const bF32 = y.dtype === 'f32' ? 1 : 0;
  if (n > 0)
    ctx.kernel('elementwise', 'add', 'pppu', { B_F32: bF32 }).launch(ctx.grid1d(n), [256], [out.ptr, x.ptr, y.ptr, n]);
  return out;
}

/** y[r, c] += bias[c] over `rows` x `cols`, in place. */
export function addBias(ctx: CudaContext, y: DevPtr, bias: DevPtr, rows: number, cols: number): void {
  ctx.kernel('elementwise', 'add_bias', 'ppui').launch(ctx.grid1d(rows * cols), [256], [y, bias, rows * cols, cols]);
}

/** silu(gate) * up of x [T, 2n] (gate and up side by side) into out [T, n]. */
export function siluMulInto(ctx: CudaContext, out: DevPtr, x: DevPtr, rows: number, n: number): void {
  ctx.kernel('elementwise', 'silu_mul', 'ppui').launch(ctx.grid1d(rows * n), [256], [out, x, rows, n]);
}

export function siluMul(ctx: CudaContext, x: Tensor): Tensor {
  const xt = ctx.own(x);
  const [T, width] = rowsCols(xt);
  if (width % 2) throw new Error(`siluMul: input [${xt.shape}] has an odd number of columns`);
  const n = width / 2;
  const out = ctx.empty([T, n]);
  if (T * n > 0) siluMulInto(ctx, out.ptr, xt.ptr, T, n);
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
  const kernel = ctx.kernel('elementwise', 'split_columns', 'puiippppiiii');
  for (let first = 0, c0 = 0; first < sizes.length; first += 4) {
    const widths = [0, 1, 2, 3].map((j) => sizes[first + j] ?? 0);
    const ptrs = [0, 1, 2, 3].map((j) => parts[first + j]?.ptr ?? 0n);
    const groupWidth = widths.reduce((a, d) => a + d, 0);
    kernel.launch(ctx.grid1d(T * groupWidth), [256], [xt.ptr, T, width, c0, ...ptrs, ...widths]);
    c0 += groupWidth;
  }
  return parts;
}

export function gelu(ctx: CudaContext, x: Tensor, approximate: 'tanh' | 'none'): Tensor {
  const xt = ctx.own(x);
  const out = ctx.empty(xt.shape);
  const n = xt.numel;
  if (n > 0) {
    ctx
      .kernel('elementwise', 'gelu', 'ppui')
      .launch(ctx.grid1d(n), [256], [out.ptr, xt.ptr, n, approximate === 'tanh' ? 1 : 0]);
  }
  return out;
}

/** `n` elements at `p` set to `value` (dummy norm weights and biases). */
export function fillConst(ctx: CudaContext, p: DevPtr, n: number, value: number): void {
  ctx.kernel('elementwise', 'fill_const', 'puf').launch(ctx.grid1d(n), [256], [p, n, value]);
}

/** `n` elements at `p` uniform in [-scale, scale) from a hash of (seed, index) (dummy matrices). */
export function fillUniform(ctx: CudaContext, p: DevPtr, n: number, seed: number, scale: number): void {
  ctx.kernel('elementwise', 'fill_uniform', 'puif').launch(ctx.grid1d(n), [256], [p, n, seed, scale]);
}
