import type { GatedActivation } from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr } from './driver.ts';
import { actDefines } from './elementwise.ts';
import { declareKernel, type Kernel } from './kernel.ts';
import type { QuantizedX } from './x-form.ts';

/**
 * kernels/fp8_gemv.cu: y[rows, n] = xq[rows, k] wq[n, k]ᵀ · xs[t] · ws[c] (+ bias, null: none) on the FP8 tensor
 * cores, x's codes and scales from fp8_quantize_rows; GATED = 1 reads w as packed gate/up [2n, k] and writes
 * act(gate) · up.
 */
export const FP8_GEMV = declareKernel('fp8_gemv', 'fp8_gemv', {
  y: 'ptr',
  xq: 'ptr',
  xs: 'ptr',
  w: 'ptr',
  ws: 'ptr',
  bias: 'ptr',
  rows: 'i32',
  n: 'i32',
  k: 'i32',
});

/** The rows of x one launch takes: the eight columns of the mma's B (the CUDA-core route's TMAX stops there too). */
export const FP8_GEMV_MAX_ROWS = 8;

/**
 * The two FP8 decode GEMVs (CudaSettings.fp8GemvRoute): 'tensor-cores', this file's kernel over x quantized per token
 * to e4m3; 'cuda-cores', kernels/gemv.cu's FP8 build (W8A16: 16-bit x read as it is, codes decoded in registers,
 * float FMAs; CudaLinear.fp8CudaCoreLauncher).
 */
export const FP8_GEMV_ROUTES = ['tensor-cores', 'cuda-cores'] as const;
export type Fp8GemvRoute = (typeof FP8_GEMV_ROUTES)[number];

/** What CudaSettings.fp8GemvRoute may say: a route, or 'auto' (`fp8RouteFor`). */
export const FP8_GEMV_CHOICES = ['auto', ...FP8_GEMV_ROUTES] as const;
export type Fp8GemvChoice = (typeof FP8_GEMV_CHOICES)[number];

/** Rows up to which 'auto' takes the CUDA-core route. */
export const FP8_CUDA_CORE_MAX_ROWS = 1;

/**
 * The route `rows` decode rows take under `choice`. 'auto': the CUDA-core GEMV for one row (no x quantization: on an
 * H100 its linear took 0.56-0.94x the tensor-core one's time at one row, the 8B shape's batch-1 token 3.73 against
 * 4.53 ms), the tensor-core GEMV from two (the CUDA cores read 2 bytes of x a weight byte per row: at four rows gate/up
 * took 1.4x the tensor-core linear's time; bench/RESULTS.md).
 */
export function fp8RouteFor(rows: number, choice: Fp8GemvChoice): Fp8GemvRoute {
  if (choice !== 'auto') return choice;
  return rows <= FP8_CUDA_CORE_MAX_ROWS ? 'cuda-cores' : 'tensor-cores';
}

/** kernels/fp8_gemv.cu's compile-time choices: SPLIT warps per tile group, TILES of 16 weight rows, UNROLL k-steps. */
export interface Fp8GemvConfig {
  split: number;
  /** Ignored by the gated build (always the gate tile and the up tile). */
  tiles: number;
  unroll: number;
}

/**
 * Swept on an H100 (bench/fp8-gemv.ts, Llama-3-8B shapes, 1-8 rows): a tile group split over all 8 warps of a block,
 * as gemv.cu's rule does at one row (256-896 blocks, every SM busy), four k-steps in flight a lane (eight 16-byte
 * weight loads, the best or within 2 % of it on q/k/v, o and down); the gated build's two tiles (gate and up) read
 * best one k-step at a time (44 against 49 us at 2 x 14336 x 4096: 2.66 TB/s).
 */
export function fp8GemvRule(gated: boolean): Fp8GemvConfig {
  return gated ? { split: 8, tiles: 2, unroll: 1 } : { split: 8, tiles: 1, unroll: 4 };
}

const WARPS = 8;

/** Blocks of a launch over `n` output features. */
export function fp8GemvBlocks(n: number, gated: boolean, cfg: Fp8GemvConfig): number {
  const groups = Math.ceil(n / (gated ? 16 : 16 * cfg.tiles));
  return Math.ceil((groups * cfg.split) / WARPS);
}

/** The build for a configuration, gated (with its activation) or not. */
export function fp8GemvDefines(
  cfg: Fp8GemvConfig,
  gated: boolean,
  act: GatedActivation = 'silu',
): Record<string, number> {
  return {
    SPLIT: cfg.split,
    UNROLL: cfg.unroll,
    ...(gated ? { GATED: 1, ...actDefines(act) } : { TILES: cfg.tiles }),
  };
}

/** An FP8 GEMV's options: the gated gate/up epilogue and its activation; a configuration other than the rule. */
export interface Fp8GemvOptions {
  gated?: boolean;
  act?: GatedActivation;
  config?: Fp8GemvConfig;
}

/** One launch's pointers: output, x's codes and scales, the weight's codes and row scales, bias (0n: none). */
export type Fp8GemvLaunch = (y: DevPtr, xq: DevPtr, xs: DevPtr, w: DevPtr, ws: DevPtr, bias?: DevPtr) => void;

/**
 * The kernel and grid for `T` rows against `n` outputs (gated: 2n weight rows) of K = `k`, chosen once (the bench
 * times launches without the choice in the loop).
 */
export function fp8GemvLauncher(ctx: CudaContext, T: number, n: number, k: number, opts: Fp8GemvOptions = {}) {
  if (T < 1 || T > FP8_GEMV_MAX_ROWS) throw new Error(`fp8_gemv: ${T} rows, built for 1 to ${FP8_GEMV_MAX_ROWS}`);
  if (k % 16) throw new Error(`fp8_gemv: K = ${k}, expected a multiple of 16`);
  const gated = opts.gated === true;
  const cfg = opts.config ?? fp8GemvRule(gated);
  const kernel: Kernel<typeof FP8_GEMV.args> = ctx.kernel(FP8_GEMV, fp8GemvDefines(cfg, gated, opts.act));
  const grid: [number] = [fp8GemvBlocks(n, gated, cfg)];
  const launch: Fp8GemvLaunch = (y, xq, xs, w, ws, bias = 0n) =>
    kernel.launch(grid, [WARPS * 32], { y, xq, xs, w, ws, bias, rows: T, n, k });
  return { kernel, launch };
}

/**
 * y[T, n] = x[T, k] w[n, k]ᵀ (+ bias) for decode rows: one fp8_gemv launch over x's e4m3 codes and per-token scales
 * (fp8.ts fp8Activations: once for the whole packed weight, by x's producer or its own launch).
 */
export function fp8GemvInto(
  ctx: CudaContext,
  y: DevPtr,
  x: QuantizedX,
  w: { codes: DevPtr; scales: DevPtr },
  T: number,
  n: number,
  k: number,
  opts: Fp8GemvOptions & { bias?: DevPtr } = {},
): void {
  fp8GemvLauncher(ctx, T, n, k, opts).launch(y, x.xq, x.xs, w.codes, w.scales, opts.bias);
}
