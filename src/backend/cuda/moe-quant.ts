import type { Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import type { GrowingBuffer } from './growing-buffer.ts';
import { declareByRows, declareKernel } from './kernel.ts';
import type { MoeRouting } from './moe-routing.ts';
import { QTYPE } from './quant-kernels.ts';
import { MAX_GRID_Y, quantizeActivations } from './quant-linear.ts';
import { QuantCudaTensor, quantGemvRoute, quantGemvTmax } from './quant-tensor.ts';
import { type CudaTensor, DTYPE_BYTES } from './tensor.ts';

const GEMV_ARGS = {
  y: 'ptr',
  xq: 'ptr',
  xs: 'ptr',
  w: 'ptr',
  offsets: 'ptr',
  pairs: 'ptr',
  active: 'ptr',
  n: 'i32',
  k: 'i32',
  rowBytes: 'i64',
  gatherK: 'i32',
} as const;
// kernels/moe_quant.cu, built per QTYPE: the grouped GEMV by its rows' power of two, plain and gated.
export const MOE_QUANT_GEMV = declareByRows('moe_quant', 'moe_quant_gemv', GEMV_ARGS);
export const MOE_QUANT_GEMV_GATED = declareByRows('moe_quant', 'moe_quant_gemv_gated', GEMV_ARGS);
export const MOE_QUANT_DEQUANT = declareKernel('moe_quant', 'moe_quant_dequant', {
  out: 'ptr',
  w: 'ptr',
  offsets: 'ptr',
  rowsPerExpert: 'i32',
  cols: 'i32',
  rowBytes: 'i64',
  yPerExpert: 'i32',
});

/** moe_quant_gemv's warps per block (WARPS): one output feature each. */
const GEMV_WARPS = 8;

/**
 * A stack of experts' matrices kept in blocks (`[E · R, cols]`, one type: a GGUF's `ffn_*_exps` as stored), or null
 * for one in the compute type. A stack of several types was dequantized at load (CudaBackend.loadStacked).
 */
export function quantExperts(w: Tensor): QuantCudaTensor | null {
  if (!(w instanceof QuantCudaTensor)) return null;
  if (w.parts.length !== 1) throw new Error(`moe: an expert stack of ${w.parts.length} block types`);
  return w;
}

/** Whether a decode step's projection over `w` takes moe_quant_gemv: 16-bit compute (the integer route). */
export function takesQuantGemv(ctx: CudaContext, w: QuantCudaTensor | null): w is QuantCudaTensor {
  return w !== null && quantGemvRoute(ctx.dtype) === 'q8';
}

/**
 * y `[rows, n]` (grouped order) = each grouped row's x times its expert's n rows of `w` (`n` = the stack's rows per
 * expert, halved when `gated`: silu(gate) * up), x's rows quantized to 8 bits first (where their producer has not).
 * `gatherK`: x row of grouped row r is pairs[r] / gatherK (a token), or r (0).
 */
export function quantMoeGemv(
  ctx: CudaContext,
  y: DevPtr,
  x: CudaTensor,
  w: QuantCudaTensor,
  r: MoeRouting,
  a: { experts: number; tokens: number; blocksY: number; gated: boolean; gatherK: number },
): void {
  const [rows, k] = w.shape;
  const part = w.parts[0]!;
  const n = rows / a.experts / (a.gated ? 2 : 1);
  const q = quantizeActivations(ctx, x);
  const kernel = (a.gated ? MOE_QUANT_GEMV_GATED : MOE_QUANT_GEMV)[quantGemvTmax(a.tokens)];
  ctx.kernel(kernel, { QTYPE: QTYPE[part.type] }).launch([Math.ceil(n / GEMV_WARPS), a.blocksY], [32 * GEMV_WARPS], {
    y,
    xq: q.xq,
    xs: q.xs,
    w: part.ptr,
    offsets: r.offsets,
    pairs: r.pairs,
    active: r.active,
    n,
    k,
    rowBytes: part.rowBytes,
    gatherK: a.gatherK,
  });
}

/**
 * The stack's chosen experts (those with grouped rows) as values in the compute type, laid out `[E, R, cols]` in
 * `scratch` (sized at load: QuantLinear.reserveExperts) for the float kernels, which read only chosen experts.
 */
export function expertValues(
  ctx: CudaContext,
  w: QuantCudaTensor,
  experts: number,
  offsets: DevPtr,
  scratch: GrowingBuffer,
): DevPtr {
  const [rows, cols] = w.shape;
  const part = w.parts[0]!;
  const need = rows * cols * DTYPE_BYTES[ctx.dtype];
  if (scratch.bytes < need) throw new Error(`moe: the expert scratch holds ${scratch.bytes} bytes, ${need} needed`);
  const rowsPerExpert = rows / experts;
  const yPerExpert = Math.max(1, Math.min(rowsPerExpert, Math.floor(MAX_GRID_Y / experts)));
  ctx
    .kernel(MOE_QUANT_DEQUANT, { QTYPE: QTYPE[part.type] })
    .launch([Math.ceil(cols / 8 / 256), experts * yPerExpert], [256], {
      out: scratch.ptr,
      w: part.ptr,
      offsets,
      rowsPerExpert,
      cols,
      rowBytes: part.rowBytes,
      yPerExpert,
    });
  return scratch.ptr;
}
