import type { GatedActivation, Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import { CublasLt } from './cublaslt.ts';
import type { DevPtr } from './driver.ts';
import { actDefines, actMul, addBias } from './elementwise.ts';
import { Fp8CudaTensor } from './fp8.ts';
import { fp8Linear, fp8LinearActMul } from './fp8-linear.ts';
import {
  GEMV_MAX_ROWS,
  type GemvConfig,
  type GemvShape,
  type GemvTable,
  gemvBlocks,
  gemvShape,
  gemvWins,
  pickGemvConfig,
  readGemvTable,
} from './gemv-config.ts';
import { declareKernel, type Kernel } from './kernel.ts';
import { versionAtLeast } from './nvrtc.ts';
import { QuantLinear } from './quant-linear.ts';
import { QuantCudaTensor } from './quant-tensor.ts';
import { cuda, DTYPE_BYTES, rowsCols } from './tensor.ts';
import type { XForm } from './x-form.ts';

/**
 * kernels/gemv.cu: y[rows, n] = x[rows, k] w[n, k]^T (+ bias, null: none), built per TMAX (rows rounded up to a
 * power of two) and configuration (SPLIT, ROWS, UNROLL); GATED = 1 reads w as packed gate/up [2n, k].
 */
export const GEMV = declareKernel('gemv', 'gemv', {
  y: 'ptr',
  x: 'ptr',
  w: 'ptr',
  bias: 'ptr',
  rows: 'i32',
  n: 'i32',
  k: 'i32',
});

/** kernels/gemv.cu's build for one shape's TMAX / GATED (with its activation) and a configuration. */
export function gemvDefines(shape: GemvShape, cfg: GemvConfig, act: GatedActivation = 'silu'): Record<string, number> {
  return {
    TMAX: shape.tmax,
    SPLIT: cfg.split,
    ...(shape.gated ? { GATED: 1, ...actDefines(act) } : cfg.rows !== 1 ? { ROWS: cfg.rows } : {}),
    ...(cfg.unroll !== 4 ? { UNROLL: cfg.unroll } : {}),
  };
}

/** A decode GEMV's options: the gated gate/up epilogue; a configuration other than the table's (the sweep). */
export interface GemvOptions {
  gated?: boolean;
  /** The gated epilogue's activation (default SiLU). */
  act?: GatedActivation;
  config?: GemvConfig;
  /** A bias added in the GEMV's epilogue (gated: the packed gate/up bias). */
  bias?: DevPtr;
}

/**
 * Linear layers: decode rows through kernels/gemv.cu where it beats cuBLASLt (gemv-table.json), everything else
 * through cuBLASLt then a bias add; quantized weights through QuantLinear.
 */
export class CudaLinear {
  readonly lt: CublasLt;
  /** Small-row GEMMs through kernels/gemv.cu (false: always cuBLASLt); starts as CudaSettings.gemv. */
  gemv: boolean;
  /** The GEMV configuration measured best per shape, and where it beats cuBLASLt (src/backend/cuda/gemv-table.json). */
  gemvTable: GemvTable = readGemvTable();

  /** Linear layers over GGUF blocks (kernels/quant.cu), with their dequantization scratch. */
  readonly quant: QuantLinear;
  /** NVRTC compiles the FP8 GEMV's e4m3 mma (PTX ISA 8.4: CUDA 12.4 on); before that FP8 weights take the GEMM. */
  private readonly fp8GemvBuilds: boolean;

  constructor(readonly ctx: CudaContext) {
    this.lt = new CublasLt(ctx.drv, ctx.settings.cudaRoots);
    this.gemv = ctx.settings.gemv;
    this.quant = new QuantLinear(ctx, this.lt);
    this.fp8GemvBuilds = versionAtLeast(ctx.mods.nvrtc.version, 12, 4);
  }

  /** FP8 weights' decode rows take kernels/fp8_gemv.cu (fp8-linear.ts fp8Path). */
  get fp8Gemv(): boolean {
    return this.gemv && this.fp8GemvBuilds;
  }

  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    if (weight instanceof Fp8CudaTensor) return fp8Linear(this, x, weight, bias);
    if (weight instanceof QuantCudaTensor) return this.quant.linear(x, weight, bias);
    const ctx = this.ctx;
    const xt = ctx.own(x);
    const w = cuda(weight);
    const [T, n] = rowsCols(xt);
    const [m, wn] = w.shape as [number, number];
    if (wn !== n) throw new Error(`linear: input has ${n} features, weight is [${w.shape}]`);
    const out = ctx.empty([T, m]);
    if (T === 0) return out;
    if (this.gemvFits(T, m, n, false)) {
      // Decode rows: a bandwidth-bound GEMV reads each weight row once for all of them (cuBLASLt's n <= 8 kernels
      // reach ~75 % of the copy rate on an H100), and adds the bias as it writes.
      this.gemvInto(out.ptr, xt.ptr, w.ptr, T, m, n, { bias: bias && cuda(bias).ptr });
      return out;
    }
    this.lt.matmul(out.ptr, xt.ptr, w.ptr, T, m, n, ctx.dtype, ctx.dtype);
    if (bias) addBias(ctx, out.ptr, cuda(bias).ptr, T, m);
    return out;
  }

  /**
   * The quantized form the linear over `weight` reads x's rows in (null: x itself, or no weight), which the op making
   * x can write beside it (an RMSNorm: norm.ts; the gated product: elementwise.ts actMul), sparing the linear its
   * quantizing launch: e4m3 per token for FP8
   * weights (the GEMV and the GEMM alike), q8 groups for GGUF blocks on the integer decode GEMV.
   */
  inputForm(x: Tensor, weight: Tensor | undefined): XForm | null {
    if (weight instanceof Fp8CudaTensor) return 'e4m3';
    if (weight instanceof QuantCudaTensor) return this.quant.inputForm(rowsCols(x)[0]);
    return null;
  }

  /**
   * Decode rows: one gated GEMV writes act(gate + bias) * (up + bias); otherwise (and for quantized weights, whose
   * parts may differ in type) linear, then actMul, which also writes its output in `form` (the input form of the
   * linear it feeds: inputForm) where asked. The gated GEMVs write no form (a row's scale spans their blocks).
   */
  linearActMul(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | undefined,
    act: GatedActivation,
    form: XForm | null = null,
  ): Tensor {
    if (weight instanceof Fp8CudaTensor) return fp8LinearActMul(this, x, weight, bias, act, form);
    if (weight instanceof QuantCudaTensor) return actMul(this.ctx, this.quant.linear(x, weight, bias), act, form);
    const xt = this.ctx.own(x);
    const w = cuda(weight);
    const [T, n] = rowsCols(xt);
    const [m2, wn] = w.shape as [number, number];
    if (T === 0 || !this.gemvFits(T, m2 / 2, n, true)) {
      return actMul(this.ctx, this.linear(x, weight, bias), act, form);
    }
    if (wn !== n) throw new Error(`linearActMul: input has ${n} features, weight is [${w.shape}]`);
    if (m2 % 2) throw new Error(`linearActMul: weight [${w.shape}] has an odd number of rows`);
    const out = this.ctx.empty([T, m2 / 2]);
    this.gemvInto(out.ptr, xt.ptr, w.ptr, T, m2 / 2, n, { gated: true, act, bias: bias && cuda(bias).ptr });
    return out;
  }

  /**
   * Whether `T` rows of `n` features against `m` outputs go through kernels/gemv.cu: where the table timed both, the
   * faster of it and cuBLASLt (up to 32 rows), else up to 4 rows (gemv-config.ts `gemvWins`); 16-byte loads need
   * 16-byte rows.
   */
  private gemvFits(T: number, m: number, n: number, gated: boolean): boolean {
    return (
      this.gemv &&
      T <= GEMV_MAX_ROWS &&
      (n * DTYPE_BYTES[this.ctx.dtype]) % 16 === 0 &&
      gemvWins(this.gemvTable, gemvShape(T, m, n, gated), this.ctx.drv.info)
    );
  }

  /**
   * y[T, m] = x[T, n] w[m, n]^T for T <= 32 through kernels/gemv.cu; `gated`: w is a packed gate/up [2m, n] and
   * y = act(x gate^T) * (x up^T). The configuration is the measured best for the shape (gemv-config.ts), or
   * `config` (the sweep's).
   */
  gemvInto(y: DevPtr, x: DevPtr, w: DevPtr, T: number, m: number, n: number, opts: GemvOptions = {}): void {
    this.gemvLauncher(T, m, n, opts)(y, x, w, opts.bias);
  }

  /** gemvInto's kernel and grid chosen once (the sweep times launches without the choice in the loop). */
  gemvLauncher(
    T: number,
    m: number,
    n: number,
    opts: GemvOptions = {},
  ): (y: DevPtr, x: DevPtr, w: DevPtr, bias?: DevPtr) => void {
    if (T > GEMV_MAX_ROWS) throw new Error(`gemv: ${T} rows, the kernel is built for at most ${GEMV_MAX_ROWS}`);
    const shape = gemvShape(T, m, n, opts.gated === true);
    const cfg = opts.config ?? pickGemvConfig(this.gemvTable, shape, this.ctx.drv.info);
    const kernel = this.gemvKernel(shape, cfg, opts.act);
    const grid: [number] = [gemvBlocks(shape, cfg)];
    return (y, x, w, bias = 0n) => kernel.launch(grid, [256], { y, x, w, bias, rows: T, n: m, k: n });
  }

  /** kernels/gemv.cu built for one shape's TMAX / GATED (with its activation) and a configuration. */
  gemvKernel(shape: GemvShape, cfg: GemvConfig, act: GatedActivation = 'silu'): Kernel<typeof GEMV.args> {
    return this.ctx.kernel(GEMV, gemvDefines(shape, cfg, act));
  }
}
