import type { LibraryHandle } from 'koffi';
import type { DType } from '../backend.ts';
import type { CudaDriver, DevPtr, Handle } from './driver.ts';
import { loadCudaLibrary } from './libs.ts';
import type { CudaSettings } from './settings.ts';

function bindLt(lib: LibraryHandle) {
  const f = (s: string) => lib.func(s);
  return {
    create: f('int cublasLtCreate(_Out_ void **handle)'),
    destroy: f('int cublasLtDestroy(void *handle)'),
    descCreate: f('int cublasLtMatmulDescCreate(_Out_ void **desc, int computeType, int scaleType)'),
    descSet: f('int cublasLtMatmulDescSetAttribute(void *desc, int attr, const void *buf, size_t n)'),
    descDestroy: f('int cublasLtMatmulDescDestroy(void *desc)'),
    layoutCreate: f(
      'int cublasLtMatrixLayoutCreate(_Out_ void **layout, int type, uint64_t rows, uint64_t cols, int64_t ld)',
    ),
    layoutDestroy: f('int cublasLtMatrixLayoutDestroy(void *layout)'),
    prefCreate: f('int cublasLtMatmulPreferenceCreate(_Out_ void **pref)'),
    prefDestroy: f('int cublasLtMatmulPreferenceDestroy(void *pref)'),
    prefSet: f('int cublasLtMatmulPreferenceSetAttribute(void *pref, int attr, const void *buf, size_t n)'),
    heuristic: f(
      'int cublasLtMatmulAlgoGetHeuristic(void *handle, void *desc, void *a, void *b, void *c, void *d, void *pref, int requested, _Out_ uint8_t *results, _Out_ int *returned)',
    ),
    matmul: f(
      'int cublasLtMatmul(void *handle, void *desc, const void *alpha, uint64_t A, void *Adesc, uint64_t B, void *Bdesc, const void *beta, uint64_t C, void *Cdesc, uint64_t D, void *Ddesc, const void *algo, uint64_t workspace, size_t workspaceSize, void *stream)',
    ),
  };
}

/** A GEMM operand's type: the storage types, and FP8 e4m3 (CUDA_R_8F_E4M3) for FP8 weights and activations. */
export type GemmType = DType | 'e4m3';
const CUDA_TYPE: Record<GemmType, number> = { f32: 0, f16: 2, bf16: 14, e4m3: 28 };
const COMPUTE_32F = 68;
const DESC_TRANSA = 3;
const DESC_TRANSB = 4;
const DESC_A_SCALE_POINTER = 17;
const DESC_B_SCALE_POINTER = 18;
const DESC_FAST_ACCUM = 25;
const DESC_A_SCALE_MODE = 31;
const DESC_B_SCALE_MODE = 32;
/** cublasLtMatmulMatrixScale_t: a float32 per row of op(A) and per column of op(B) (cuBLAS 12.9+). */
const SCALE_OUTER_VEC_32F = 3;
const PREF_MAX_WORKSPACE = 1;
/** sizeof(cublasLtMatmulHeuristicResult_t): algo (64 bytes), workspaceSize, state, wavesCount, reserved[4]. */
const HEURISTIC_BYTES = 96;

interface Plan {
  desc: Handle;
  /** Every layout made for it (a, b and c), destroyed with it. */
  layouts: Handle[];
  a: Handle;
  b: Handle;
  c: Handle;
  algo: Uint8Array;
}

/**
 * Row-major GEMMs `Y[T, out] = X[T, in] · W[out, in]ᵀ` through cuBLASLt, fp32 accumulation. The descriptors and the
 * heuristic's algorithm are made once per (T, out, in, dtypes) and reused, so steps (and graph captures) only launch.
 */
export class CublasLt {
  private readonly api: ReturnType<typeof bindLt>;
  private readonly handle: Handle;
  /** Per shape and types; null: cuBLASLt has no algorithm for that FP8 shape with outer-vector scales. */
  private readonly plans = new Map<string, Plan | null>();
  private readonly pref: Handle;
  readonly workspaceBytes = 32 << 20;
  private readonly workspace: DevPtr;
  private readonly one = new Float32Array([1]);
  private readonly zero = new Float32Array([0]);
  private released = false;

  /**
   * `settings.cudaRoots`: toolkit folders searched for the library; `settings.fp8FastAccum` is read as each FP8 shape
   * is first planned (tests switch it).
   */
  constructor(
    private readonly drv: CudaDriver,
    private readonly settings: Pick<CudaSettings, 'cudaRoots' | 'fp8FastAccum'>,
  ) {
    this.api = bindLt(
      loadCudaLibrary(
        ['libcublasLt.so.13', 'libcublasLt.so.12', 'libcublasLt.so'],
        'the cuBLASLt library libcublasLt',
        'Install the CUDA toolkit 12 or 13 (or the nvidia-cublas package) and put its lib64 folder on LD_LIBRARY_PATH',
        settings.cudaRoots,
      ),
    );
    const h = [null];
    this.check(this.api.create(h), 'cublasLtCreate');
    this.handle = h[0];
    const p = [null];
    this.check(this.api.prefCreate(p), 'cublasLtMatmulPreferenceCreate');
    this.pref = p[0];
    const ws = new BigUint64Array([BigInt(this.workspaceBytes)]);
    this.check(this.api.prefSet(this.pref, PREF_MAX_WORKSPACE, ws, 8), 'cublasLtMatmulPreferenceSetAttribute');
    this.workspace = drv.alloc(this.workspaceBytes);
  }

  /**
   * Destroys the plans' descriptors, the preference and the handle, once (the workspace goes with the backend's other
   * allocations).
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const p of this.plans.values()) if (p) this.destroyPlan(p);
    this.plans.clear();
    this.check(this.api.prefDestroy(this.pref), 'cublasLtMatmulPreferenceDestroy');
    this.check(this.api.destroy(this.handle), 'cublasLtDestroy');
  }

  private destroyPlan(p: Pick<Plan, 'desc' | 'layouts'>): void {
    for (const l of p.layouts) this.check(this.api.layoutDestroy(l), 'cublasLtMatrixLayoutDestroy');
    this.check(this.api.descDestroy(p.desc), 'cublasLtMatmulDescDestroy');
  }

  private check(rc: number, what: string): void {
    if (rc !== 0) throw new Error(`${what} failed: cuBLAS status ${rc}`);
  }

  private plan(
    t: number,
    out: number,
    inF: number,
    inType: GemmType,
    outType: DType,
    outerScales = false,
    ldy = out,
    choice = 0,
  ): Plan | null {
    const fastAccum = inType === 'e4m3' && this.settings.fp8FastAccum;
    const key = `${t},${out},${inF},${inType},${outType},${outerScales},${ldy},${fastAccum},${choice}`;
    const hit = this.plans.get(key);
    if (hit !== undefined) return hit;
    const a = this.api;
    const d = [null];
    this.check(a.descCreate(d, COMPUTE_32F, CUDA_TYPE.f32), 'cublasLtMatmulDescCreate');
    const made = { desc: d[0] as Handle, layouts: [] as Handle[] };
    try {
      const plan = this.describe(made, t, out, inF, inType, outType, outerScales, ldy, fastAccum, choice);
      this.plans.set(key, plan);
      if (!plan) this.destroyPlan(made);
      return plan;
    } catch (e) {
      // Unchecked: the error that brought us here is the one to report.
      for (const l of made.layouts) this.api.layoutDestroy(l);
      this.api.descDestroy(made.desc);
      throw e;
    }
  }

  /**
   * Sets up `made.desc` and its layouts (recorded in `made`) and asks the heuristic for its `choice`-th algorithm
   * (0: its first pick); null as `plan` says.
   */
  private describe(
    made: { desc: Handle; layouts: Handle[] },
    t: number,
    out: number,
    inF: number,
    inType: GemmType,
    outType: DType,
    outerScales: boolean,
    ldy: number,
    fastAccum: boolean,
    choice: number,
  ): Plan | null {
    const a = this.api;
    const { desc } = made;
    // Column-major view: Yᵀ[out, T] = op(W)[out, in] · Xᵀ[in, T], with W stored as col-major [in, out].
    this.check(a.descSet(desc, DESC_TRANSA, new Int32Array([1]), 4), 'set TRANSA');
    this.check(a.descSet(desc, DESC_TRANSB, new Int32Array([0]), 4), 'set TRANSB');
    // e4m3 sums kept in the tensor cores' accumulators all along K, not promoted to float32 every few k-blocks.
    if (fastAccum) this.check(a.descSet(desc, DESC_FAST_ACCUM, new Int8Array([1]), 1), 'set FAST_ACCUM');
    if (outerScales) {
      // A library without the scale modes refuses the attributes. The scale vectors are set per call; the heuristic
      // sees the workspace in their place.
      const mode = new Int32Array([SCALE_OUTER_VEC_32F]);
      if (a.descSet(desc, DESC_A_SCALE_MODE, mode, 4) !== 0 || a.descSet(desc, DESC_B_SCALE_MODE, mode, 4) !== 0) {
        return null;
      }
      this.setScales(desc, this.workspace, this.workspace);
    }
    const layout = (type: GemmType, rows: number, cols: number, ld: number) => {
      const l = [null];
      this.check(
        a.layoutCreate(l, CUDA_TYPE[type], BigInt(rows), BigInt(cols), BigInt(ld)),
        'cublasLtMatrixLayoutCreate',
      );
      made.layouts.push(l[0]);
      return l[0];
    };
    const A = layout(inType, inF, out, inF);
    const B = layout(inType, inF, t, inF);
    const C = layout(outType, out, t, ldy);
    const results = new Uint8Array(HEURISTIC_BYTES * (choice + 1));
    const n = [0];
    const rc = a.heuristic(this.handle, desc, A, B, C, C, this.pref, choice + 1, results, n);
    if (outerScales && (rc !== 0 || n[0] === 0)) return null;
    this.check(rc, 'cublasLtMatmulAlgoGetHeuristic');
    if (n[0] <= choice) {
      throw new Error(
        `cuBLASLt has ${n[0]} algorithm(s) for [${t}, ${inF}] x [${out}, ${inF}]^T (${inType}), not a #${choice}`,
      );
    }
    const at = HEURISTIC_BYTES * choice;
    return { desc, layouts: made.layouts, a: A, b: B, c: C, algo: results.slice(at, at + 64) };
  }

  private setScales(desc: Handle, a: DevPtr, b: DevPtr): void {
    this.check(this.api.descSet(desc, DESC_A_SCALE_POINTER, new BigUint64Array([a]), 8), 'set A_SCALE_POINTER');
    this.check(this.api.descSet(desc, DESC_B_SCALE_POINTER, new BigUint64Array([b]), 8), 'set B_SCALE_POINTER');
  }

  /**
   * y[T, out] = (x · wᵀ) · xScales[t] · wScales[o] for e4m3 x and w, the scales applied by cuBLASLt's outer-vector
   * scale modes (cuBLAS 12.9+; the weight's scales are op(A)'s rows, the tokens' op(B)'s columns). False, with nothing
   * launched, where cuBLASLt has no algorithm for it (older libraries, other cards, f16 or f32 output).
   */
  matmulFp8Scaled(
    y: DevPtr,
    x: DevPtr,
    w: DevPtr,
    t: number,
    out: number,
    inF: number,
    outType: DType,
    scales: { x: DevPtr; w: DevPtr },
  ): boolean {
    const p = this.plan(t, out, inF, 'e4m3', outType, true);
    if (!p) return false;
    this.setScales(p.desc, scales.w, scales.x);
    this.launch(p, y, x, w, t, out, inF);
    return true;
  }

  /** Whether matmulFp8Scaled has an algorithm for this shape (tests and benches say which path ran). */
  hasFp8Scaled(t: number, out: number, inF: number, outType: DType): boolean {
    return this.plan(t, out, inF, 'e4m3', outType, true) !== null;
  }

  /**
   * y[T, out] = x[T, in] · w[out, in]ᵀ (all row-major), on the driver's stream; y's rows `ldy` apart (default `out`:
   * a column block of a wider output otherwise). `e4m3` inputs (FP8: cuBLASLt 12.1+ on compute capability 8.9+)
   * need `in` and `out` to be multiples of 16 and a bf16 or f32 `outType`; this TN layout is the one FP8 matmuls take.
   * `choice`: the heuristic's how-manieth algorithm (0, its first pick, everywhere but bench/gemm-algos.ts).
   */
  matmul(
    y: DevPtr,
    x: DevPtr,
    w: DevPtr,
    t: number,
    out: number,
    inF: number,
    inType: GemmType,
    outType: DType,
    ldy = out,
    choice = 0,
  ): void {
    this.launch(this.plan(t, out, inF, inType, outType, false, ldy, choice)!, y, x, w, t, out, inF);
  }

  private launch(p: Plan, y: DevPtr, x: DevPtr, w: DevPtr, t: number, out: number, inF: number): void {
    const rc = this.api.matmul(
      this.handle,
      p.desc,
      this.one,
      w,
      p.a,
      x,
      p.b,
      this.zero,
      y,
      p.c,
      y,
      p.c,
      p.algo,
      this.workspace,
      this.workspaceBytes,
      this.drv.stream,
    );
    this.check(rc, `cublasLtMatmul [${t}, ${inF}] x [${out}, ${inF}]^T`);
  }
}
