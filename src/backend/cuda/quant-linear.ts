import type { Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { CublasLt } from './cublaslt.ts';
import type { DevPtr } from './driver.ts';
import { addBias } from './elementwise.ts';
import { GrowingBuffer } from './growing-buffer.ts';
import {
  type QuantGemmRoute,
  quantGemm,
  quantGemmCovers,
  quantGemmServes,
  quantGemmWorkspaceBytes,
} from './quant-gemm.ts';
import { QTYPE, QUANT_ACT_Q8, QUANT_DEQUANT, QUANT_EMBEDDING, QUANT_GEMV, QUANT_GEMV_Q8 } from './quant-kernels.ts';
import {
  dequantScratchBytes,
  QUANT_SCRATCH_BYTES,
  type QuantCudaPart,
  type QuantCudaTensor,
  quantGemvRoute,
  quantGemvTmax,
  quantLinearPath,
  scratchRuns,
} from './quant-tensor.ts';
import { type CudaTensor, cuda, DTYPE_BYTES, rowsCols } from './tensor.ts';
import { allocQuantizedX, type QuantizedX, type XForm } from './x-form.ts';

/** Warps per block of quant_gemv: one output feature each. */
const GEMV_WARPS = 8;
/** The largest grid y the driver launches. */
export const MAX_GRID_Y = 65535;

/**
 * Linear layers and embedding gathers over quantized weights (kernels/quant.cu). Decode rows (up to 8) run the GEMV
 * that dequantizes in registers, each part writing its columns of the output; more rows dequantize the weight into
 * a persistent scratch in the compute type, a run of rows at a time (quant-tensor.ts `scratchRuns`), each followed by
 * its cuBLASLt GEMM into its columns of the output. The scratch is sized as weights load, for the largest run, so
 * nothing is allocated once graphs are captured.
 */
export class QuantLinear {
  private readonly scratch: GrowingBuffer;
  /** Bytes per scratch run (QUANT_SCRATCH_BYTES; tests lower it to make a small weight take several runs). */
  runBytes = QUANT_SCRATCH_BYTES;
  /** Past the GEMV's rows: the fused GEMM where it serves, or always dequantize (CudaSettings.quantGemm; benches flip it). */
  route: QuantGemmRoute;
  /** The fused GEMM's split-K partials, sized as weights load (quantGemmWorkspaceBytes). */
  private readonly workspace: GrowingBuffer;
  /** The largest expert stack kept in blocks as values (moe-quant.ts expertValues), sized as weights load. */
  readonly experts: GrowingBuffer;

  constructor(
    private readonly ctx: CudaContext,
    private readonly lt: CublasLt,
  ) {
    this.route = ctx.settings.quantGemm;
    this.scratch = new GrowingBuffer(ctx.drv);
    this.workspace = new GrowingBuffer(ctx.drv);
    this.experts = new GrowingBuffer(ctx.drv);
  }

  /** The form the linear reads `rows` rows of x in: q8 on the integer decode GEMV, else x itself (null). */
  inputForm(rows: number): XForm | null {
    return quantLinearPath(rows) === 'gemv' && quantGemvRoute(this.ctx.dtype) === 'q8' ? 'q8' : null;
  }

  get scratchBytes(): number {
    return this.scratch.bytes;
  }

  /** Bytes of the fused GEMM's split-K workspace. */
  get workspaceBytes(): number {
    return this.workspace.bytes;
  }

  /** Grows the expert scratch to hold the stack `w` as values; true when it moved (captured graphs are stale). */
  reserveExperts(w: QuantCudaTensor): boolean {
    return this.experts.grow(w.shape[0] * w.shape[1] * DTYPE_BYTES[this.ctx.dtype]);
  }

  /** Grows the scratch to hold `w` dequantized; true when it moved (graphs captured over the old one are stale). */
  reserveFor(w: QuantCudaTensor): boolean {
    const movedWorkspace = this.workspace.grow(this.workspaceNeed(w));
    return this.scratch.grow(this.scratchNeed(w)) || movedWorkspace;
  }

  linear(x: Tensor, w: QuantCudaTensor, bias?: Tensor): Tensor {
    const ctx = this.ctx;
    const xt = ctx.own(x);
    const [T, k] = rowsCols(xt);
    const [m, wk] = w.shape;
    if (wk !== k) throw new Error(`linear: input has ${k} features, quantized weight is [${w.shape}]`);
    const out = ctx.empty([T, m]);
    if (T === 0) return out;
    const b = bias && cuda(bias);
    if (quantLinearPath(T) === 'gemv') {
      this.gemv(out, xt, w, b);
      return out;
    }
    if (quantGemmServes(this.route, T, w, ctx.dtype)) {
      quantGemm(ctx, out.ptr, xt.ptr, T, w, this.workspace);
      if (b) addBias(ctx, out.ptr, b.ptr, T, m);
      return out;
    }
    const scratch = this.scratchFor(w);
    const size = DTYPE_BYTES[ctx.dtype];
    const firsts = w.firstRows;
    for (const run of scratchRuns(w, ctx.dtype, this.runBytes)) {
      this.dequantizeRows(w.parts[run.part]!, run.row, run.rows, k, scratch);
      const col = BigInt((firsts[run.part]! + run.row) * size);
      this.lt.matmul(out.ptr + col, xt.ptr, scratch, T, run.rows, k, ctx.dtype, ctx.dtype, m);
    }
    if (b) addBias(ctx, out.ptr, b.ptr, T, m);
    return out;
  }

  /**
   * out[T, m] = x w^T (+ bias) by the decode GEMV, one launch per part into its columns (bias in the epilogue); on
   * the integer route x is quantized once for all parts.
   */
  private gemv(out: CudaTensor, x: CudaTensor, w: QuantCudaTensor, bias: CudaTensor | undefined): void {
    const [T, k] = rowsCols(x);
    const size = DTYPE_BYTES[this.ctx.dtype];
    const firsts = w.firstRows;
    const q8 = quantGemvRoute(this.ctx.dtype) === 'q8' ? quantizeActivations(this.ctx, x) : null;
    const tmax = quantGemvTmax(T);
    w.parts.forEach((p, i) => {
      const col = BigInt(firsts[i]! * size);
      const grid = [Math.ceil(p.rows / GEMV_WARPS)] as const;
      const block = [GEMV_WARPS * 32] as const;
      const common = {
        y: out.ptr + col,
        w: p.ptr,
        bias: bias ? bias.ptr + col : 0n,
        rows: T,
        n: p.rows,
        k,
        rowBytes: p.rowBytes,
        ldy: w.shape[0],
      };
      const defines = { QTYPE: QTYPE[p.type] };
      if (q8) this.ctx.kernel(QUANT_GEMV_Q8[tmax], defines).launch(grid, block, { ...common, xq: q8.xq, xs: q8.xs });
      else this.ctx.kernel(QUANT_GEMV[tmax], defines).launch(grid, block, { ...common, x: x.ptr });
    });
  }

  /** Writes rows [first, first + rows) of a part as a `[rows, cols]` matrix in the compute type at `dst`. */
  dequantizeRows(p: QuantCudaPart, first: number, rows: number, cols: number, dst: DevPtr): void {
    const grid = [Math.ceil(cols / 8 / 256), Math.min(rows, MAX_GRID_Y)] as const;
    this.ctx.kernel(QUANT_DEQUANT, { QTYPE: QTYPE[p.type] }).launch(grid, [256], {
      out: dst,
      w: p.ptr + BigInt(first * p.rowBytes),
      rows,
      cols,
      rowBytes: p.rowBytes,
    });
  }

  /** Bytes of the fused GEMM's workspace `w` needs: its parts' largest split partials (none for types it does not decode). */
  private workspaceNeed(w: QuantCudaTensor): number {
    const { dtype, drv } = this.ctx;
    const k = w.shape[1];
    return Math.max(
      0,
      ...w.parts.map((p) =>
        quantGemmCovers(p.type, k, dtype) ? quantGemmWorkspaceBytes(p.rows, k, p.type, drv.info.smCount) : 0,
      ),
    );
  }

  /** Scratch bytes `w` needs: its largest run dequantized. */
  private scratchNeed(w: QuantCudaTensor): number {
    return dequantScratchBytes(w.shape, this.ctx.dtype, this.runBytes);
  }

  /** The scratch, checked to hold `w` (loadWeight reserves it for every quantized weight). */
  private scratchFor(w: QuantCudaTensor): DevPtr {
    if (this.scratchNeed(w) > this.scratch.bytes)
      throw new Error(
        `quantized weight [${w.shape}] has no dequantization scratch reserved (reserveFor after loading it or changing runBytes)`,
      );
    return this.scratch.ptr;
  }
}

/**
 * x [T, k] quantized to 8 bits per 32 values (kernels/q8_act.cuh's layout): the levels at `xq`, the scales at `xs`.
 * Those its producer wrote beside it (an RMSNorm told it feeds this linear, bit for bit these), else quantized now
 * into the step arena.
 */
export function quantizeActivations(ctx: CudaContext, x: CudaTensor): QuantizedX {
  if (x.quantized?.form === 'q8') return x.quantized;
  const [T, k] = rowsCols(x);
  const q = allocQuantizedX(ctx, 'q8', T, k);
  quantizeActivationsInto(ctx, x.ptr, T * k, q);
  return q;
}

/** `values` values of x (a multiple of 32) quantized to 8 bits into `q` (a lane per 8 values). */
export function quantizeActivationsInto(ctx: CudaContext, x: DevPtr, values: number, q: { xq: DevPtr; xs: DevPtr }) {
  const groups = values / 32;
  ctx.kernel(QUANT_ACT_Q8).launch([Math.ceil(values / 8 / 256)], [256], { q: q.xq, scales: q.xs, x, groups });
}

/** out[t] = row index[t] of a quantized table, dequantized as it is gathered (one launch per part). */
export function quantEmbedding(ctx: CudaContext, table: QuantCudaTensor, index: DevPtr, T: number): CudaTensor {
  const hidden = table.shape[1];
  const out = ctx.empty([T, hidden]);
  if (T === 0) return out;
  const firsts = table.firstRows;
  table.parts.forEach((p, i) => {
    ctx.kernel(QUANT_EMBEDDING, { QTYPE: QTYPE[p.type] }).launch([T], ctx.rowThreads(hidden), {
      out: out.ptr,
      table: p.ptr,
      index,
      hidden,
      rowBytes: p.rowBytes,
      first: firsts[i]!,
      partRows: p.rows,
    });
  });
  return out;
}
