import type { StepBatch } from '../../primitives/step-batch.ts';
import {
  type AttentionSpec,
  type Backend,
  checkColumnSplit,
  type DType,
  type HostTensor,
  type KvCacheSpec,
  type LayerKvCache,
  type RopeSpec,
  type SamplingRow,
  type StepContext,
  type Tensor,
} from '../backend.ts';
import { CudaAttention } from './attention.ts';
import { CudaContext, type CudaContextOptions, stepOf } from './context.ts';
import { CublasLt } from './cublaslt.ts';
import type { DevPtr } from './driver.ts';
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
import { DecodeGraphs } from './graphs.ts';
import { type CudaLayerKv, KvCaches, kvOf } from './kv-cache.ts';
import type { Kernel } from './modules.ts';
import { DeviceSampler } from './sampling.ts';
import type { StepCapacity } from './step-buffers.ts';
import { CudaTensor, cuda, DTYPE_BYTES, decodeFrom, hostBytesAs, rowsCols } from './tensor.ts';

export interface CudaBackendOptions extends CudaContextOptions {
  /** Capture decode steps as CUDA graphs per batch-size bucket (default true). */
  graphs?: boolean;
}

/** A decode GEMV's options: the gated gate/up epilogue; a configuration other than the table's (the sweep). */
export interface GemvOptions {
  gated?: boolean;
  config?: GemvConfig;
  /** A bias added in the GEMV's epilogue (gated: the packed gate/up bias). */
  bias?: DevPtr;
}

/** Host bytes of a tensor's elements as float32. */
function decoded(bytes: Uint8Array, dtype: DType): Float32Array {
  return dtype === 'f32' ? new Float32Array(bytes.buffer) : decodeFrom(bytes, dtype);
}

const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/**
 * The CUDA backend: weights in one device allocation, activations from a per-step arena, kernels compiled by NVRTC
 * for the device, GEMMs through cuBLASLt, decode steps replayed from CUDA graphs.
 */
export class CudaBackend implements Backend {
  readonly name = 'cuda' as const;
  readonly ctx: CudaContext;
  readonly lt: CublasLt;
  readonly graphs: DecodeGraphs | null;
  private readonly kv: KvCaches;
  private readonly invFreq = new WeakMap<RopeSpec, DevPtr>();
  private readonly sampler: DeviceSampler;
  private readonly attn: CudaAttention;
  /** Small-row GEMMs through kernels/gemv.cu (PAGODA_GEMV=0 or false here: always cuBLASLt). */
  gemv = process.env.PAGODA_GEMV !== '0';
  /** The GEMV configuration measured best per shape, and where it beats cuBLASLt (src/backend/cuda/gemv-table.json). */
  gemvTable: GemvTable = readGemvTable();
  private dummySeed = 1;

  constructor(opts: CudaBackendOptions) {
    this.ctx = new CudaContext(opts);
    this.lt = new CublasLt(this.ctx.drv);
    this.kv = new KvCaches(this.ctx);
    this.graphs = opts.graphs === false ? null : new DecodeGraphs(this.ctx, this.kv);
    this.sampler = new DeviceSampler(this.ctx);
    this.attn = new CudaAttention(this.ctx);
  }

  loadWeight(w: HostTensor, opts?: { transpose?: boolean }): Tensor {
    const shape = opts?.transpose && w.shape.length === 2 ? [w.shape[1]!, w.shape[0]!] : [...w.shape];
    const t = new CudaTensor(shape, this.ctx.dtype, 0n);
    const n = t.numel;
    const ptr = this.ctx.weights.alloc(n * DTYPE_BYTES[this.ctx.dtype]);
    const out = new CudaTensor(shape, this.ctx.dtype, ptr);
    if (w.bytes.byteLength === 0 && n > 0) {
      // --load-format dummy: no bytes on the host; fill on the device (norm weights and biases 1, matrices small).
      if (shape.length === 1)
        this.ctx.kernel('elementwise', 'fill_const', 'puf').launch(this.ctx.grid1d(n), [256], [ptr, n, 1]);
      else {
        const scale = 1 / Math.sqrt(shape[shape.length - 1]!);
        this.ctx
          .kernel('elementwise', 'fill_uniform', 'puif')
          .launch(this.ctx.grid1d(n), [256], [ptr, n, this.dummySeed++, scale]);
      }
      return out;
    }
    this.ctx.drv.upload(ptr, hostBytesAs(w, this.ctx.dtype, opts?.transpose === true));
    return out;
  }

  allocKvCache(spec: KvCacheSpec): LayerKvCache[] {
    return this.kv.alloc(spec);
  }

  /** Frees every KV cache allocated so far (and the graphs captured over them). */
  releaseKvCaches(): void {
    this.graphs?.clear();
    this.kv.release();
  }

  copyKvBlocks(cache: readonly LayerKvCache[], src: Int32Array, dst: Int32Array): void {
    this.kv.copyBlocks(cache, src, dst);
  }

  /** Bytes of KV cache per block for a model (K and V, every layer). */
  kvBlockBytes(spec: Omit<KvCacheSpec, 'numBlocks'>): number {
    return this.kv.blockBytes(spec);
  }

  /** Sizes the step metadata buffers once, so graphs captured later never see them move. */
  reserveSteps(cap: StepCapacity): void {
    this.ctx.steps.reserve(cap);
  }

  beginStep(batch: StepBatch): StepContext {
    return this.ctx.beginStep(batch);
  }

  /**
   * Runs one step's forward. Decode batches are replayed from a CUDA graph captured for their batch-size bucket;
   * other steps run eagerly. Returns the logit rows of `batch.logitsIndices`.
   */
  forwardStep(batch: StepBatch, forward: (step: StepContext) => Tensor): Tensor {
    const replayed = this.graphs?.run(batch, forward);
    if (replayed) return replayed;
    return forward(this.beginStep(batch));
  }

  embedding(table: Tensor, step: StepContext, index: 'tokens' | 'positions'): Tensor {
    const tab = cuda(table);
    const s = stepOf(step);
    const [, dim] = rowsCols(tab);
    const T = s.batch.inputIds.length;
    const out = this.ctx.empty([T, dim]);
    if (T > 0) {
      this.ctx
        .kernel('embedding', 'embedding', 'pppi')
        .launch([T], this.ctx.rowThreads(dim), [out.ptr, tab.ptr, index === 'tokens' ? s.ids : s.positions, dim]);
    }
    return out;
  }

  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    const xt = this.ctx.own(x);
    const w = cuda(weight);
    const [T, n] = rowsCols(xt);
    const [m, wn] = w.shape as [number, number];
    if (wn !== n) throw new Error(`linear: input has ${n} features, weight is [${w.shape}]`);
    const out = this.ctx.empty([T, m]);
    if (T === 0) return out;
    if (this.gemvFits(T, m, n, false)) {
      // Decode rows: a bandwidth-bound GEMV reads each weight row once for all of them (cuBLASLt's n <= 8 kernels
      // reach ~75 % of the copy rate on an H100), and adds the bias as it writes.
      this.gemvInto(out.ptr, xt.ptr, w.ptr, T, m, n, { bias: bias && cuda(bias).ptr });
      return out;
    }
    this.lt.matmul(out.ptr, xt.ptr, w.ptr, T, m, n, this.ctx.dtype, this.ctx.dtype);
    if (bias) {
      this.ctx
        .kernel('elementwise', 'add_bias', 'ppui')
        .launch(this.ctx.grid1d(T * m), [256], [out.ptr, cuda(bias).ptr, T * m, m]);
    }
    return out;
  }

  /** Decode rows: one gated GEMV writes silu(gate + bias) * (up + bias); otherwise linear, then siluMul. */
  linearSiluMul(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    const xt = this.ctx.own(x);
    const w = cuda(weight);
    const [T, n] = rowsCols(xt);
    const [m2, wn] = w.shape as [number, number];
    if (T === 0 || !this.gemvFits(T, m2 / 2, n, true)) return this.siluMul(this.linear(x, weight, bias));
    if (wn !== n) throw new Error(`linearSiluMul: input has ${n} features, weight is [${w.shape}]`);
    if (m2 % 2) throw new Error(`linearSiluMul: weight [${w.shape}] has an odd number of rows`);
    const out = this.ctx.empty([T, m2 / 2]);
    this.gemvInto(out.ptr, xt.ptr, w.ptr, T, m2 / 2, n, { gated: true, bias: bias && cuda(bias).ptr });
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
   * y = silu(x gate^T) * (x up^T). The configuration is the measured best for the shape (gemv-config.ts), or
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
    const kernel = this.gemvKernel(shape, cfg);
    const grid: [number] = [gemvBlocks(shape, cfg)];
    return (y, x, w, bias = 0n) => kernel.launch(grid, [256], [y, x, w, bias, T, m, n]);
  }

  /** kernels/gemv.cu built for one shape's TMAX / GATED and a configuration. */
  gemvKernel(shape: GemvShape, cfg: GemvConfig): Kernel {
    return this.ctx.kernel('gemv', 'gemv', 'ppppiii', {
      TMAX: shape.tmax,
      SPLIT: cfg.split,
      ...(shape.gated ? { GATED: 1 } : cfg.rows !== 1 ? { ROWS: cfg.rows } : {}),
      ...(cfg.unroll !== 4 ? { UNROLL: cfg.unroll } : {}),
    });
  }

  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
    const xt = this.ctx.own(x);
    const [rows, n] = rowsCols(xt);
    const out = this.ctx.empty(xt.shape);
    if (rows > 0) {
      this.ctx
        .kernel('norm', 'rms_norm', 'pppfi')
        .launch([rows], this.ctx.rowThreads(n), [out.ptr, xt.ptr, cuda(weight).ptr, eps, n]);
    }
    return out;
  }

  /** The residual comes back in float (any input dtype): the stream accumulates every layer's update unrounded. */
  addRmsNorm(x: Tensor, residual: Tensor, weight: Tensor, eps: number): { out: Tensor; residual: Tensor } {
    const xt = this.ctx.own(x);
    const r = cuda(residual);
    const [rows, n] = rowsCols(xt);
    const out = this.ctx.empty(xt.shape);
    const res = this.ctx.empty(xt.shape, 'f32');
    if (rows > 0) {
      this.ctx
        .kernel('norm', 'add_rms_norm', 'pppppfi', { RES_IN_F32: r.dtype === 'f32' ? 1 : 0 })
        .launch([rows], this.ctx.rowThreads(n), [out.ptr, res.ptr, xt.ptr, r.ptr, cuda(weight).ptr, eps, n]);
    }
    return { out, residual: res };
  }

  layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
    const xt = this.ctx.own(x);
    const [rows, n] = rowsCols(xt);
    const out = this.ctx.empty(xt.shape);
    if (rows > 0) {
      this.ctx
        .kernel('norm', 'layer_norm', 'ppppfi')
        .launch([rows], this.ctx.rowThreads(n), [out.ptr, xt.ptr, cuda(weight).ptr, cuda(bias).ptr, eps, n]);
    }
    return out;
  }

  /** a + b in the storage type; either side may be the float residual stream. */
  add(a: Tensor, b: Tensor): Tensor {
    let [x, y] = [cuda(a), cuda(b)];
    if (x.dtype !== this.ctx.dtype) [x, y] = [y, x];
    const out = this.ctx.empty(this.ctx.own(x).shape);
    const n = x.numel;
    const bF32 = y.dtype === 'f32' ? 1 : 0;
    if (n > 0)
      this.ctx
        .kernel('elementwise', 'add', 'pppu', { B_F32: bF32 })
        .launch(this.ctx.grid1d(n), [256], [out.ptr, x.ptr, y.ptr, n]);
    return out;
  }

  siluMul(x: Tensor): Tensor {
    const xt = this.ctx.own(x);
    const [T, width] = rowsCols(xt);
    if (width % 2) throw new Error(`siluMul: input [${xt.shape}] has an odd number of columns`);
    const n = width / 2;
    const out = this.ctx.empty([T, n]);
    if (T * n > 0)
      this.ctx.kernel('elementwise', 'silu_mul', 'ppui').launch(this.ctx.grid1d(T * n), [256], [out.ptr, xt.ptr, T, n]);
    return out;
  }

  /** One row: views into x at byte offsets, no launch (decode). More rows: one copy launch per four parts. */
  splitColumns(x: Tensor, sizes: readonly number[]): Tensor[] {
    const xt = this.ctx.own(x);
    const [T, width] = rowsCols(xt);
    checkColumnSplit(xt.shape, sizes);
    const elem = DTYPE_BYTES[this.ctx.dtype];
    if (T === 1) {
      let start = 0;
      return sizes.map((size) => {
        const part = new CudaTensor([1, size], this.ctx.dtype, xt.ptr + BigInt(start * elem));
        start += size;
        return part;
      });
    }
    const parts = sizes.map((size) => this.ctx.empty([T, size]));
    if (T === 0) return parts;
    const kernel = this.ctx.kernel('elementwise', 'split_columns', 'puiippppiiii');
    for (let first = 0, c0 = 0; first < sizes.length; first += 4) {
      const widths = [0, 1, 2, 3].map((j) => sizes[first + j] ?? 0);
      const ptrs = [0, 1, 2, 3].map((j) => parts[first + j]?.ptr ?? 0n);
      const groupWidth = widths.reduce((a, d) => a + d, 0);
      kernel.launch(this.ctx.grid1d(T * groupWidth), [256], [xt.ptr, T, width, c0, ...ptrs, ...widths]);
      c0 += groupWidth;
    }
    return parts;
  }

  gelu(x: Tensor, approximate: 'tanh' | 'none'): Tensor {
    const xt = this.ctx.own(x);
    const out = this.ctx.empty(xt.shape);
    const n = xt.numel;
    if (n > 0) {
      this.ctx
        .kernel('elementwise', 'gelu', 'ppui')
        .launch(this.ctx.grid1d(n), [256], [out.ptr, xt.ptr, n, approximate === 'tanh' ? 1 : 0]);
    }
    return out;
  }

  rope(q: Tensor, k: Tensor, headDim: number, rope: RopeSpec, step: StepContext): void {
    this.launchRope(q, k, headDim, rope, step, null);
  }

  ropeWriteKv(q: Tensor, k: Tensor, v: Tensor, rope: RopeSpec, cache: LayerKvCache, step: StepContext): void {
    const kv = kvOf(cache);
    this.ctx.arena.markLayer();
    this.launchRope(q, k, kv.k.shape[3]!, rope, step, { v: cuda(v), cache: kv });
  }

  /** kernels/rope.cu: rotates q and k in place; with `write`, also stores k and v at the step's slots. */
  private launchRope(
    q: Tensor,
    k: Tensor,
    headDim: number,
    rope: RopeSpec,
    step: StepContext,
    write: { v: CudaTensor; cache: CudaLayerKv } | null,
  ): void {
    const s = stepOf(step);
    const qt = cuda(q);
    const kt = cuda(k);
    const [T, qw] = rowsCols(qt);
    const [, kw] = rowsCols(kt);
    if (T === 0) return;
    let inv = this.invFreq.get(rope);
    if (inv === undefined) {
      inv = this.ctx.weights.alloc(rope.invFreq.byteLength);
      this.ctx.drv.upload(inv, rope.invFreq);
      this.invFreq.set(rope, inv);
    }
    const pairs = ((qw + kw) / headDim) * (rope.rotaryDim / 2);
    this.ctx
      .kernel('rope', 'rope', 'ppppiiiiifpppp')
      .launch(
        [T],
        [Math.min(512, Math.max(32, Math.ceil(Math.max(pairs, write ? kw : 0) / 32) * 32))],
        [
          qt.ptr,
          kt.ptr,
          s.positions,
          inv,
          qw / headDim,
          kw / headDim,
          headDim,
          rope.rotaryDim,
          rope.style === 'neox' ? 1 : 0,
          rope.mscale,
          write ? write.v.ptr : 0n,
          write ? write.cache.k.ptr : 0n,
          write ? write.cache.v.ptr : 0n,
          write ? s.slots : 0n,
        ],
      );
  }

  writeKv(k: Tensor, v: Tensor, cache: LayerKvCache, step: StepContext): void {
    const s = stepOf(step);
    const kt = cuda(k);
    const [T, row] = rowsCols(kt);
    if (T === 0) return;
    const c = kvOf(cache);
    this.ctx.arena.markLayer();
    this.ctx
      .kernel('kv_cache', 'reshape_and_cache', 'pppppi')
      .launch([T], this.ctx.rowThreads(row), [kt.ptr, cuda(v).ptr, c.k.ptr, c.v.ptr, s.slots, row]);
  }

  attention(q: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext): Tensor {
    const qt = cuda(q);
    const out = this.ctx.empty(qt.shape);
    const c = kvOf(cache);
    this.attn.run(out, qt, c.k, c.v, spec, stepOf(step));
    return out;
  }

  gatherLogitRows(x: Tensor, step: StepContext): Tensor {
    const s = stepOf(step);
    const xt = this.ctx.own(x);
    const [, n] = rowsCols(xt);
    const rows = s.batch.logitsIndices.length;
    const out = this.ctx.empty([rows, n]);
    if (rows > 0)
      this.ctx
        .kernel('embedding', 'gather_rows', 'pppi')
        .launch([rows], this.ctx.rowThreads(n), [out.ptr, xt.ptr, s.logitRows, n]);
    return out;
  }

  view(t: Tensor, shape: readonly number[]): Tensor {
    const c = cuda(t);
    const n = shape.reduce((a, d) => a * d, 1);
    if (n !== c.numel) throw new Error(`view: [${c.shape}] has ${c.numel} elements, [${shape}] has ${n}`);
    return new CudaTensor([...shape], c.dtype, c.ptr);
  }

  toHost(t: Tensor, rows?: readonly number[]): Float32Array {
    const c = cuda(t);
    if (!rows) {
      const bytes = new Uint8Array(c.bytes);
      if (bytes.length) this.ctx.drv.download(bytes, c.ptr);
      return decoded(bytes, c.dtype);
    }
    // One copy per run of consecutive rows (a step's prompt-logprob rows are one run).
    const rowBytes = c.bytes / c.shape[0]!;
    const bytes = new Uint8Array(rows.length * rowBytes);
    for (let i = 0; i < rows.length; ) {
      let n = 1;
      while (i + n < rows.length && rows[i + n] === rows[i]! + n) n++;
      this.ctx.drv.download(bytes.subarray(i * rowBytes, (i + n) * rowBytes), c.ptr + BigInt(rows[i]! * rowBytes));
      i += n;
    }
    return decoded(bytes, c.dtype);
  }

  /** Sizes the sampler's buffers for `rows` x `vocab` so sampling allocates nothing later. */
  reserveSampling(rows: number, vocab: number): void {
    this.sampler.reserve(rows, vocab);
  }

  sampleTokens(logits: Tensor, rows: readonly SamplingRow[]): Int32Array {
    return this.sampler.sample(logits, rows);
  }

  /** What the device holds, for the start-up report. */
  memoryReport(): string {
    const { drv, weights, arena, steps, dtype } = this.ctx;
    const { free, total } = drv.memInfo();
    const i = drv.info;
    return [
      `${i.name} (sm_${i.ccMajor}${i.ccMinor}, ${i.smCount} SMs), ${gib(total)} total, ${gib(free)} free`,
      `weights ${gib(weights.usedBytes)} in ${weights.allocations} allocation(s) (${dtype})`,
      `KV cache ${gib(this.kv.bytes)}`,
      `activation arena ${mib(arena.capacityBytes)}`,
      `GEMM workspace ${mib(this.lt.workspaceBytes)}, pinned step staging ${mib(steps.pinnedBytes)}`,
    ].join('; ');
  }
}
