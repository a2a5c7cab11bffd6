import type { GatedActivation, Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import { CublasLt } from './cublaslt.ts';
import type { DevPtr } from './driver.ts';
import { actDefines, actMul, addBias } from './elementwise.ts';
import { Fp8CudaTensor } from './fp8.ts';
import { FP8_GEMV_MAX_ROWS, type Fp8GemvChoice } from './fp8-gemv.ts';
import { fp8InputForm, fp8Linear, fp8LinearActMul } from './fp8-linear.ts';
import {
  fp8CudaCoreGemvRule,
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

/**
 * kernels/gemv.cu's WFP8 build (sm_89+): the same GEMV over an FP8 weight's e4m3 codes and float32 row scales `ws`, x
 * read in the compute dtype (W8A16 on the CUDA cores: the 'cuda-cores' FP8 route).
 */
export const GEMV_FP8 = declareKernel('gemv', 'gemv_fp8', {
  y: 'ptr',
  x: 'ptr',
  w: 'ptr',
  ws: 'ptr',
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
    ...(cfg.stream ? { WSTREAM: 1 } : {}),
  };
}

/** The same build over FP8 weights (gemv_fp8). */
export function fp8CudaCoreGemvDefines(shape: GemvShape, cfg: GemvConfig, act?: GatedActivation) {
  return { ...gemvDefines(shape, cfg, act), WFP8: 1 };
}

/** One CUDA-core FP8 GEMV launch: output, x, the weight's codes and row scales, bias (0n: none). */
export type Fp8CudaCoreLaunch = (y: DevPtr, x: DevPtr, w: { codes: DevPtr; scales: DevPtr }, bias?: DevPtr) => void;

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
  /** The GEMV configuration measured best per shape on this card, and where it beats cuBLASLt (gemv-table.json). */
  gemvTable: GemvTable;

  /** Linear layers over GGUF blocks (kernels/quant.cu), with their dequantization scratch. */
  readonly quant: QuantLinear;
  /** NVRTC compiles the FP8 GEMV's e4m3 mma (PTX ISA 8.4: CUDA 12.4 on); before that FP8 weights take the GEMM. */
  private readonly fp8GemvBuilds: boolean;

  constructor(readonly ctx: CudaContext) {
    this.lt = new CublasLt(ctx.drv, ctx.settings);
    this.gemv = ctx.settings.gemv;
    this.gemvTable = readGemvTable(ctx.drv.info);
    this.quant = new QuantLinear(ctx, this.lt);
    this.fp8GemvBuilds = versionAtLeast(ctx.mods.nvrtc.version, 12, 4);
  }

  /**
   * The GEMV FP8 weights' decode rows take (fp8-linear.ts fp8Path): CudaSettings.fp8GemvRoute, or null (the FP8 GEMM)
   * with the GEMV off or the tensor-core route without its NVRTC (the CUDA-core build's cvt is PTX ISA 7.8).
   */
  get fp8Gemv(): Fp8GemvChoice | null {
    const choice = this.ctx.settings.fp8GemvRoute;
    if (!this.gemv) return null;
    if (this.fp8GemvBuilds) return choice;
    return choice === 'tensor-cores' ? null : 'cuda-cores';
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
   * weights (the GEMM and the tensor-core GEMV; fp8-linear.ts fp8InputForm), q8 groups for GGUF blocks on the integer
   * decode GEMV.
   */
  inputForm(x: Tensor, weight: Tensor | undefined): XForm | null {
    if (weight instanceof Fp8CudaTensor) return fp8InputForm(rowsCols(x)[0], this.fp8Gemv);
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
  gemvFits(T: number, m: number, n: number, gated: boolean): boolean {
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

  /**
   * The CUDA-core FP8 GEMV's kernel and grid for `T` <= 8 rows against an FP8 weight of `m` outputs (gated: 2m rows)
   * and K = `n`, chosen once: gemv-config.ts `fp8CudaCoreGemvRule`, or `opts.config` (the bench's sweep).
   */
  fp8CudaCoreLauncher(T: number, m: number, n: number, opts: Omit<GemvOptions, 'bias'> = {}): Fp8CudaCoreLaunch {
    if (T > FP8_GEMV_MAX_ROWS) throw new Error(`gemv_fp8: ${T} rows, built for at most ${FP8_GEMV_MAX_ROWS}`);
    if (n % 16) throw new Error(`gemv_fp8: K = ${n}, expected a multiple of 16`);
    const shape = gemvShape(T, m, n, opts.gated === true);
    const cfg = opts.config ?? fp8CudaCoreGemvRule(shape);
    const kernel = this.fp8CudaCoreKernel(shape, cfg, opts.act);
    const grid: [number] = [gemvBlocks(shape, cfg)];
    return (y, x, w, bias = 0n) =>
      kernel.launch(grid, [256], { y, x, w: w.codes, ws: w.scales, bias, rows: T, n: m, k: n });
  }

  /** gemv.cu's FP8 build for one shape and configuration (the bench reads its registers). */
  fp8CudaCoreKernel(shape: GemvShape, cfg: GemvConfig, act?: GatedActivation): Kernel<typeof GEMV_FP8.args> {
    return this.ctx.kernel(GEMV_FP8, fp8CudaCoreGemvDefines(shape, cfg, act));
  }

  /** kernels/gemv.cu built for one shape's TMAX / GATED (with its activation) and a configuration. */
  gemvKernel(shape: GemvShape, cfg: GemvConfig, act: GatedActivation = 'silu'): Kernel<typeof GEMV.args> {
    return this.ctx.kernel(GEMV, gemvDefines(shape, cfg, act));
  }
}
