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
import { CublasLt } from './cublaslt.ts';
import { CudaDriver, type DevPtr } from './driver.ts';
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
import { Arena, Slab } from './memory.ts';
import { type Defines, type Kernel, KernelModules } from './modules.ts';
import { Nvrtc } from './nvrtc.ts';
import { DeviceSampler } from './sampling.ts';
import { CudaStepContext, StepBuffers, type StepCapacity } from './step-buffers.ts';
import { CudaTensor, cuda, DTYPE_BYTES, DTYPE_DEFINE, decodeFrom, hostBytesAs, rowsCols } from './tensor.ts';

export interface CudaBackendOptions {
  /** Storage and GEMM input type of weights, activations and KV cache. */
  dtype: DType;
  /** Bytes the weights will take (one allocation when known). */
  weightBytes?: number;
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

function stepOf(step: StepContext): CudaStepContext {
  if (!(step instanceof CudaStepContext)) throw new Error('step context does not belong to the CUDA backend');
  return step;
}

class CudaLayerKv implements LayerKvCache {
  constructor(
    readonly k: CudaTensor,
    readonly v: CudaTensor,
  ) {}
}

/** Host bytes of a tensor's elements as float32. */
function decoded(bytes: Uint8Array, dtype: DType): Float32Array {
  return dtype === 'f32' ? new Float32Array(bytes.buffer) : decodeFrom(bytes, dtype);
}

function kvOf(cache: LayerKvCache): CudaLayerKv {
  if (!(cache instanceof CudaLayerKv)) throw new Error('KV cache does not belong to the CUDA backend');
  return cache;
}

const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/**
 * The CUDA backend: weights in one device allocation, activations from a per-step arena, kernels compiled by NVRTC
 * for the device, GEMMs through cuBLASLt, decode steps replayed from CUDA graphs.
 */
export class CudaBackend implements Backend {
  readonly name = 'cuda' as const;
  readonly drv: CudaDriver;
  readonly mods: KernelModules;
  readonly lt: CublasLt;
  readonly dtype: DType;
  readonly weights: Slab;
  readonly arena: Arena;
  readonly steps: StepBuffers;
  readonly graphs: DecodeGraphs | null;
  private readonly kernels = new Map<string, Kernel>();
  private readonly invFreq = new WeakMap<RopeSpec, DevPtr>();
  private readonly sampler: DeviceSampler;
  private readonly attn: CudaAttention;
  private kvBytes = 0;
  private kvAllocs: DevPtr[] = [];
  /** Small-row GEMMs through kernels/gemv.cu (PAGODA_GEMV=0 or false here: always cuBLASLt). */
  gemv = process.env.PAGODA_GEMV !== '0';
  /** The GEMV configuration measured best per shape, and where it beats cuBLASLt (src/backend/cuda/gemv-table.json). */
  gemvTable: GemvTable = readGemvTable();
  /** Bumped by each KV cache allocation: decode graphs replay over the most recently allocated cache. */
  kvGeneration = 0;
  private dummySeed = 1;

  constructor(opts: CudaBackendOptions) {
    this.drv = CudaDriver.open(Number(process.env.PAGODA_CUDA_DEVICE ?? 0));
    this.mods = new KernelModules(this.drv, Nvrtc.open());
    this.lt = new CublasLt(this.drv);
    this.dtype = opts.dtype;
    this.weights = new Slab(this.drv);
    // A little headroom for small per-model tables (RoPE inverse frequencies) after the weights.
    if (opts.weightBytes) this.weights.reserve(opts.weightBytes + (4 << 20));
    this.arena = new Arena(this.drv);
    this.steps = new StepBuffers(this.drv);
    this.graphs = opts.graphs === false ? null : new DecodeGraphs(this);
    this.sampler = new DeviceSampler(this);
    this.attn = new CudaAttention(this);
  }

  /** A kernel compiled for this backend's dtype (memoized by name). */
  kernel(file: string, fn: string, kinds: string, defines: Defines = {}): Kernel {
    const key = `${file}.${fn}${JSON.stringify(defines)}`;
    let k = this.kernels.get(key);
    if (!k) {
      k = this.mods.get(file, fn, kinds, { PAGODA_DTYPE: DTYPE_DEFINE[this.dtype], ...defines });
      this.kernels.set(key, k);
    }
    return k;
  }

  /** A tensor of this backend in its storage type (the float residual stream goes only to addRmsNorm and add). */
  own(t: Tensor): CudaTensor {
    const c = cuda(t);
    if (c.dtype !== this.dtype) throw new Error(`expected a ${this.dtype} tensor, got ${c.dtype} [${c.shape}]`);
    return c;
  }

  /** A new activation tensor from the step arena. */
  empty(shape: readonly number[], dtype: DType = this.dtype): CudaTensor {
    const n = shape.reduce((a, d) => a * d, 1);
    return new CudaTensor([...shape], dtype, this.arena.alloc(n * DTYPE_BYTES[dtype]));
  }

  private grid1d(n: number): [number] {
    return [Math.max(1, Math.min(Math.ceil(n / 256), this.drv.info.smCount * 16))];
  }

  private rowThreads(cols: number): [number] {
    return [Math.min(1024, Math.max(32, Math.ceil(cols / 8 / 32) * 32))];
  }

  loadWeight(w: HostTensor, opts?: { transpose?: boolean }): Tensor {
    const shape = opts?.transpose && w.shape.length === 2 ? [w.shape[1]!, w.shape[0]!] : [...w.shape];
    const t = new CudaTensor(shape, this.dtype, 0n);
    const n = t.numel;
    const ptr = this.weights.alloc(n * DTYPE_BYTES[this.dtype]);
    const out = new CudaTensor(shape, this.dtype, ptr);
    if (w.bytes.byteLength === 0 && n > 0) {
      // --load-format dummy: no bytes on the host; fill on the device (norm weights and biases 1, matrices small).
      if (shape.length === 1)
        this.kernel('elementwise', 'fill_const', 'puf').launch(this.grid1d(n), [256], [ptr, n, 1]);
      else {
        const scale = 1 / Math.sqrt(shape[shape.length - 1]!);
        this.kernel('elementwise', 'fill_uniform', 'puif').launch(
          this.grid1d(n),
          [256],
          [ptr, n, this.dummySeed++, scale],
        );
      }
      return out;
    }
    this.drv.upload(ptr, hostBytesAs(w, this.dtype, opts?.transpose === true));
    return out;
  }

  allocKvCache(spec: KvCacheSpec): LayerKvCache[] {
    const shape = [spec.numBlocks, spec.blockSize, spec.numKvHeads, spec.headDim];
    const bytes = shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[this.dtype];
    // One allocation for every layer.
    const base = this.drv.alloc(2 * spec.numLayers * bytes);
    this.kvAllocs.push(base);
    this.kvGeneration++;
    this.kvBytes += 2 * spec.numLayers * bytes;
    // Poisoned rather than zeroed: a read of a slot nothing wrote shows up as NaN in the tests.
    this.drv.fill32(base, 0x7fc07fc0, (2 * spec.numLayers * bytes) / 4);
    return Array.from({ length: spec.numLayers }, (_, l) => {
      const k = base + BigInt(2 * l * bytes);
      return new CudaLayerKv(
        new CudaTensor(shape, this.dtype, k),
        new CudaTensor(shape, this.dtype, k + BigInt(bytes)),
      );
    });
  }

  /** Frees every KV cache allocated so far (and the graphs captured over them). */
  releaseKvCaches(): void {
    this.graphs?.clear();
    this.drv.sync();
    for (const p of this.kvAllocs) this.drv.free(p);
    this.kvAllocs = [];
    this.kvBytes = 0;
  }

  copyKvBlocks(cache: readonly LayerKvCache[], src: Int32Array, dst: Int32Array): void {
    for (const layer of cache) {
      const { k, v } = kvOf(layer);
      const blockBytes = k.bytes / k.shape[0]!;
      for (let i = 0; i < src.length; i++) {
        const from = BigInt(src[i]! * blockBytes);
        const to = BigInt(dst[i]! * blockBytes);
        this.drv.copy(k.ptr + to, k.ptr + from, blockBytes);
        this.drv.copy(v.ptr + to, v.ptr + from, blockBytes);
      }
    }
  }

  /** Bytes of KV cache per block for a model (K and V, every layer). */
  kvBlockBytes(spec: Omit<KvCacheSpec, 'numBlocks'>): number {
    return 2 * spec.numLayers * spec.blockSize * spec.numKvHeads * spec.headDim * DTYPE_BYTES[this.dtype];
  }

  /** Sizes the step metadata buffers once, so graphs captured later never see them move. */
  reserveSteps(cap: StepCapacity): void {
    this.steps.reserve(cap);
  }

  beginStep(batch: StepBatch): StepContext {
    this.arena.reset();
    return this.steps.upload(batch);
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
    const out = this.empty([T, dim]);
    if (T > 0) {
      this.kernel('embedding', 'embedding', 'pppi').launch([T], this.rowThreads(dim), [
        out.ptr,
        tab.ptr,
        index === 'tokens' ? s.ids : s.positions,
        dim,
      ]);
    }
    return out;
  }

  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    const xt = this.own(x);
    const w = cuda(weight);
    const [T, n] = rowsCols(xt);
    const [m, wn] = w.shape as [number, number];
    if (wn !== n) throw new Error(`linear: input has ${n} features, weight is [${w.shape}]`);
    const out = this.empty([T, m]);
    if (T === 0) return out;
    if (this.gemvFits(T, m, n, false)) {
      // Decode rows: a bandwidth-bound GEMV reads each weight row once for all of them (cuBLASLt's n <= 8 kernels
      // reach ~75 % of the copy rate on an H100), and adds the bias as it writes.
      this.gemvInto(out.ptr, xt.ptr, w.ptr, T, m, n, { bias: bias && cuda(bias).ptr });
      return out;
    }
    this.lt.matmul(out.ptr, xt.ptr, w.ptr, T, m, n, this.dtype, this.dtype);
    if (bias) {
      this.kernel('elementwise', 'add_bias', 'ppui').launch(
        this.grid1d(T * m),
        [256],
        [out.ptr, cuda(bias).ptr, T * m, m],
      );
    }
    return out;
  }

  /** Decode rows: one gated GEMV writes silu(gate + bias) * (up + bias); otherwise linear, then siluMul. */
  linearSiluMul(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    const xt = this.own(x);
    const w = cuda(weight);
    const [T, n] = rowsCols(xt);
    const [m2, wn] = w.shape as [number, number];
    if (T === 0 || !this.gemvFits(T, m2 / 2, n, true)) return this.siluMul(this.linear(x, weight, bias));
    if (wn !== n) throw new Error(`linearSiluMul: input has ${n} features, weight is [${w.shape}]`);
    if (m2 % 2) throw new Error(`linearSiluMul: weight [${w.shape}] has an odd number of rows`);
    const out = this.empty([T, m2 / 2]);
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
      (n * DTYPE_BYTES[this.dtype]) % 16 === 0 &&
      gemvWins(this.gemvTable, gemvShape(T, m, n, gated), this.drv.info)
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
    const cfg = opts.config ?? pickGemvConfig(this.gemvTable, shape, this.drv.info);
    const kernel = this.gemvKernel(shape, cfg);
    const grid: [number] = [gemvBlocks(shape, cfg)];
    return (y, x, w, bias = 0n) => kernel.launch(grid, [256], [y, x, w, bias, T, m, n]);
  }

  /** kernels/gemv.cu built for one shape's TMAX / GATED and a configuration. */
  gemvKernel(shape: GemvShape, cfg: GemvConfig): Kernel {
    return this.kernel('gemv', 'gemv', 'ppppiii', {
      TMAX: shape.tmax,
      SPLIT: cfg.split,
      ...(shape.gated ? { GATED: 1 } : cfg.rows !== 1 ? { ROWS: cfg.rows } : {}),
      ...(cfg.unroll !== 4 ? { UNROLL: cfg.unroll } : {}),
    });
  }

  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
    const xt = this.own(x);
    const [rows, n] = rowsCols(xt);
    const out = this.empty(xt.shape);
    if (rows > 0) {
      this.kernel('norm', 'rms_norm', 'pppfi').launch([rows], this.rowThreads(n), [
        out.ptr,
        xt.ptr,
        cuda(weight).ptr,
        eps,
        n,
      ]);
    }
    return out;
  }

  /** The residual comes back in float (any input dtype): the stream accumulates every layer's update unrounded. */
  addRmsNorm(x: Tensor, residual: Tensor, weight: Tensor, eps: number): { out: Tensor; residual: Tensor } {
    const xt = this.own(x);
    const r = cuda(residual);
    const [rows, n] = rowsCols(xt);
    const out = this.empty(xt.shape);
    const res = this.empty(xt.shape, 'f32');
    if (rows > 0) {
      this.kernel('norm', 'add_rms_norm', 'pppppfi', { RES_IN_F32: r.dtype === 'f32' ? 1 : 0 }).launch(
        [rows],
        this.rowThreads(n),
        [out.ptr, res.ptr, xt.ptr, r.ptr, cuda(weight).ptr, eps, n],
      );
    }
    return { out, residual: res };
  }

  layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
    const xt = this.own(x);
    const [rows, n] = rowsCols(xt);
    const out = this.empty(xt.shape);
    if (rows > 0) {
      this.kernel('norm', 'layer_norm', 'ppppfi').launch([rows], this.rowThreads(n), [
        out.ptr,
        xt.ptr,
        cuda(weight).ptr,
        cuda(bias).ptr,
        eps,
        n,
      ]);
    }
    return out;
  }

  /** a + b in the storage type; either side may be the float residual stream. */
  add(a: Tensor, b: Tensor): Tensor {
    let [x, y] = [cuda(a), cuda(b)];
    if (x.dtype !== this.dtype) [x, y] = [y, x];
    const out = this.empty(this.own(x).shape);
    const n = x.numel;
    const bF32 = y.dtype === 'f32' ? 1 : 0;
    if (n > 0)
      this.kernel('elementwise', 'add', 'pppu', { B_F32: bF32 }).launch(
        this.grid1d(n),
        [256],
        [out.ptr, x.ptr, y.ptr, n],
      );
    return out;
  }

  siluMul(x: Tensor): Tensor {
    const xt = this.own(x);
    const [T, width] = rowsCols(xt);
    if (width % 2) throw new Error(`siluMul: input [${xt.shape}] has an odd number of columns`);
    const n = width / 2;
    const out = this.empty([T, n]);
    if (T * n > 0)
      this.kernel('elementwise', 'silu_mul', 'ppui').launch(this.grid1d(T * n), [256], [out.ptr, xt.ptr, T, n]);
    return out;
  }

  /** One row: views into x at byte offsets, no launch (decode). More rows: one copy launch per four parts. */
  splitColumns(x: Tensor, sizes: readonly number[]): Tensor[] {
    const xt = this.own(x);
    const [T, width] = rowsCols(xt);
    checkColumnSplit(xt.shape, sizes);
    const elem = DTYPE_BYTES[this.dtype];
    if (T === 1) {
      let start = 0;
      return sizes.map((size) => {
        const part = new CudaTensor([1, size], this.dtype, xt.ptr + BigInt(start * elem));
        start += size;
        return part;
      });
    }
    const parts = sizes.map((size) => this.empty([T, size]));
    if (T === 0) return parts;
    const kernel = this.kernel('elementwise', 'split_columns', 'puiippppiiii');
    for (let first = 0, c0 = 0; first < sizes.length; first += 4) {
      const widths = [0, 1, 2, 3].map((j) => sizes[first + j] ?? 0);
      const ptrs = [0, 1, 2, 3].map((j) => parts[first + j]?.ptr ?? 0n);
      const groupWidth = widths.reduce((a, d) => a + d, 0);
      kernel.launch(this.grid1d(T * groupWidth), [256], [xt.ptr, T, width, c0, ...ptrs, ...widths]);
      c0 += groupWidth;
    }
    return parts;
  }

  gelu(x: Tensor, approximate: 'tanh' | 'none'): Tensor {
    const xt = this.own(x);
    const out = this.empty(xt.shape);
    const n = xt.numel;
    if (n > 0) {
      this.kernel('elementwise', 'gelu', 'ppui').launch(
        this.grid1d(n),
        [256],
        [out.ptr, xt.ptr, n, approximate === 'tanh' ? 1 : 0],
      );
    }
    return out;
  }

  rope(q: Tensor, k: Tensor, headDim: number, rope: RopeSpec, step: StepContext): void {
    this.launchRope(q, k, headDim, rope, step, null);
  }

  ropeWriteKv(q: Tensor, k: Tensor, v: Tensor, rope: RopeSpec, cache: LayerKvCache, step: StepContext): void {
    const kv = kvOf(cache);
    this.arena.markLayer();
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
      inv = this.weights.alloc(rope.invFreq.byteLength);
      this.drv.upload(inv, rope.invFreq);
      this.invFreq.set(rope, inv);
    }
    const pairs = ((qw + kw) / headDim) * (rope.rotaryDim / 2);
    this.kernel('rope', 'rope', 'ppppiiiiifpppp').launch(
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
    this.arena.markLayer();
    this.kernel('kv_cache', 'reshape_and_cache', 'pppppi').launch([T], this.rowThreads(row), [
      kt.ptr,
      cuda(v).ptr,
      c.k.ptr,
      c.v.ptr,
      s.slots,
      row,
    ]);
  }

  attention(q: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext): Tensor {
    const qt = cuda(q);
    const out = this.empty(qt.shape);
    const c = kvOf(cache);
    this.attn.run(out, qt, c.k, c.v, spec, stepOf(step));
    return out;
  }

  gatherLogitRows(x: Tensor, step: StepContext): Tensor {
    const s = stepOf(step);
    const xt = this.own(x);
    const [, n] = rowsCols(xt);
    const rows = s.batch.logitsIndices.length;
    const out = this.empty([rows, n]);
    if (rows > 0)
      this.kernel('embedding', 'gather_rows', 'pppi').launch([rows], this.rowThreads(n), [
        out.ptr,
        xt.ptr,
        s.logitRows,
        n,
      ]);
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
      if (bytes.length) this.drv.download(bytes, c.ptr);
      return decoded(bytes, c.dtype);
    }
    // One copy per run of consecutive rows (a step's prompt-logprob rows are one run).
    const rowBytes = c.bytes / c.shape[0]!;
    const bytes = new Uint8Array(rows.length * rowBytes);
    for (let i = 0; i < rows.length; ) {
      let n = 1;
      while (i + n < rows.length && rows[i + n] === rows[i]! + n) n++;
      this.drv.download(bytes.subarray(i * rowBytes, (i + n) * rowBytes), c.ptr + BigInt(rows[i]! * rowBytes));
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
    const { free, total } = this.drv.memInfo();
    const i = this.drv.info;
    return [
      `${i.name} (sm_${i.ccMajor}${i.ccMinor}, ${i.smCount} SMs), ${gib(total)} total, ${gib(free)} free`,
      `weights ${gib(this.weights.usedBytes)} in ${this.weights.allocations} allocation(s) (${this.dtype})`,
      `KV cache ${gib(this.kvBytes)}`,
      `activation arena ${mib(this.arena.capacityBytes)}`,
      `GEMM workspace ${mib(this.lt.workspaceBytes)}, pinned step staging ${mib(this.steps.pinnedBytes)}`,
    ].join('; ');
  }
}
