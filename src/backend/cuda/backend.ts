import { concatHostTensors } from '../../primitives/lazy-tensor.ts';
import { asRowMatrix } from '../../primitives/quant/stack.ts';
import type { StepBatch } from '../../primitives/step-batch.ts';
import type {
  Activation,
  AttentionSpec,
  Backend,
  DType,
  GatedActivation,
  HostTensor,
  KvCacheSpec,
  LayerKvCache,
  PoolingMode,
  SampledIds,
  SamplingRow,
  ScaleFactorIn,
  StepContext,
  Tensor,
  WeightLoadOptions,
} from '../backend.ts';
import type { MoeSpec, MoeWeights } from '../moe-spec.ts';
import { composedQkvRopeWriteKv } from '../qkv-rope.ts';
import { CudaAttention } from './attention.ts';
import { CudaContext, type CudaContextOptions } from './context.ts';
import * as elementwise from './elementwise.ts';
import { embedding, gatherLogitRows } from './embedding.ts';
import { hasFp8 } from './fp8.ts';
import { DecodeGraphs } from './graphs.ts';
import { KvCaches } from './kv-cache.ts';
import * as kvCompression from './kv-compression.ts';
import { CudaLinear } from './linear.ts';
import { memoryReport } from './memory-report.ts';
import { moe } from './moe.ts';
import * as norm from './norm.ts';
import * as pooling from './pooling.ts';
import { CudaQkvRope } from './qkv-rope.ts';
import { dequantizedOnHost, keepsBlocks } from './quant-load.ts';
import { downloadRows, Readbacks } from './readback.ts';
import { CudaRope } from './rope.ts';
import { DeviceSampledIds, DeviceSampler } from './sampling.ts';
import type { StepCapacity } from './step-buffers.ts';
import { CudaEvent } from './stream-event.ts';
import { cuda, decoded, viewOf } from './tensor.ts';
import { CudaWeightLoader } from './weight-loader.ts';
import type { UploadStats } from './weight-upload.ts';

export interface CudaBackendOptions extends CudaContextOptions {
  /** Hears the weight bytes uploaded so far, after every chunk (a terminal's progress line). */
  loadProgress?: (bytes: number) => void;
}

/**
 * The CUDA backend: weights in one device allocation, activations from a per-step arena, kernels compiled by NVRTC
 * for the device, GEMMs through cuBLASLt, decode steps replayed from CUDA graphs. The ops live in their family's
 * file (norm, elementwise, embedding, linear, rope, attention, sampling); this class hands each call to it.
 */
export class CudaBackend implements Backend {
  readonly name = 'cuda' as const;
  readonly ctx: CudaContext;
  /** Linear layers: the GEMV / cuBLASLt choice (benchmarks and tests switch it). */
  readonly linears: CudaLinear;
  readonly graphs: DecodeGraphs | null;
  private readonly kv: KvCaches;
  private readonly rotary: CudaRope;
  private readonly qkvRope: CudaQkvRope;
  private readonly sampler: DeviceSampler;
  private readonly attn: CudaAttention;
  private readonly readbacks: Readbacks;
  private readonly weightLoader: CudaWeightLoader;
  /** FP8 weights (compute capability 8.9+): see Backend.fp8Weights. */
  readonly fp8Weights: boolean;

  get computeDtype(): DType {
    return this.ctx.dtype;
  }

  constructor(opts: CudaBackendOptions) {
    this.ctx = new CudaContext(opts);
    this.linears = new CudaLinear(this.ctx);
    this.kv = new KvCaches(this.ctx);
    this.graphs = this.ctx.settings.graphs ? new DecodeGraphs(this.ctx, this.kv) : null;
    this.rotary = new CudaRope(this.ctx);
    this.qkvRope = new CudaQkvRope(this.ctx, this.linears, this.rotary);
    const events = () => new CudaEvent(this.ctx.drv);
    this.sampler = new DeviceSampler(this.ctx, events);
    this.attn = new CudaAttention(this.ctx);
    this.readbacks = new Readbacks(this.ctx.drv, events);
    this.fp8Weights = hasFp8(this.ctx.drv.info);
    this.weightLoader = new CudaWeightLoader(this.ctx, events, this.fp8Weights, opts.loadProgress);
  }

  loadWeight(w: HostTensor, opts?: WeightLoadOptions): Tensor {
    if (!keepsBlocks(w, opts?.transpose === true)) return this.weightLoader.load(w, opts);
    if (w.shape.length === 2) return this.loadStacked([w]);
    // An expert stack (no linear reads it): moe-quant.ts takes it in blocks, or as values from the expert scratch.
    const stack = this.weightLoader.loadQuantized([asRowMatrix(w)]);
    if (this.linears.quant.reserveExperts(stack)) this.graphs?.clear();
    return stack;
  }

  /** Frees the buffer 16-bit weights passed through on their way to FP8 (call once the model is loaded). */
  releaseLoadStaging(): void {
    this.weightLoader.releaseFp8Staging();
  }

  /** Waits for the weights queued so far to be on the device and frees the staging ring; what was uploaded. */
  finishLoading(): UploadStats {
    return this.weightLoader.finish();
  }

  /**
   * Quantized 2-D weights as stored, one part per type; the dequantization scratch grows to the largest. A stack of
   * experts' matrices (`shape` 3-D) becomes values, as a stacked tensor of one type does (`dequantizedOnHost`).
   */
  loadStacked(parts: readonly HostTensor[], shape?: readonly number[]): Tensor {
    if (shape && shape.length !== 2) {
      const values = parts.map((p) => dequantizedOnHost(p) ?? p);
      this.weightLoader.dequantizedAtLoad++;
      return this.weightLoader.load(concatHostTensors(parts.map((p) => p.name).join(' + '), shape, 'f32', values));
    }
    const w = this.weightLoader.loadQuantized(parts);
    if (this.linears.quant.reserveFor(w)) this.graphs?.clear();
    return w;
  }

  allocKvCache(spec: KvCacheSpec): LayerKvCache[] {
    return this.kv.alloc(spec);
  }

  /** Frees all this backend allocated (weights, caches, scratch, staging): its model unloaded; nothing may use it after. */
  release(): void {
    this.graphs?.clear();
    this.ctx.release();
    this.linears.lt.release();
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
  forwardStep(batch: StepBatch, forward: (step: StepContext) => Tensor, inputs?: SampledIds): Tensor {
    if (inputs && !(inputs instanceof DeviceSampledIds)) throw new Error('forwardStep: inputs from another backend');
    const replayed = this.graphs?.run(batch, forward, inputs);
    if (replayed) return replayed;
    return forward(this.ctx.beginStep(batch, inputs));
  }

  embedding(
    table: Tensor,
    step: StepContext,
    index: 'tokens' | 'positions' | 'tokenTypes',
    rowOffset?: number,
  ): Tensor {
    // Only several tensor-parallel ranks split a table, which CUDA does not run yet (runner/tensor-parallel.ts).
    if (rowOffset !== undefined) throw new Error('a vocabulary-parallel embedding is not built for the CUDA backend');
    return embedding(this.ctx, table, step, index);
  }

  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    return this.linears.linear(x, weight, bias);
  }

  linearActMul(x: Tensor, weight: Tensor, bias: Tensor | undefined, act: GatedActivation, feeds?: Tensor): Tensor {
    return this.linears.linearActMul(x, weight, bias, act, this.linears.inputForm(x, feeds));
  }

  moe(x: Tensor, weights: MoeWeights, spec: MoeSpec): Tensor {
    return moe(this.ctx, this.linears, x, weights, spec);
  }

  rmsNorm(x: Tensor, weight: Tensor, eps: number, weightOffset?: number, feeds?: Tensor): Tensor {
    return norm.rmsNorm(this.ctx, x, weight, eps, weightOffset, this.linears.inputForm(x, feeds));
  }

  addRmsNorm(
    x: Tensor,
    residual: Tensor,
    weight: Tensor,
    eps: number,
    weightOffset?: number,
    feeds?: Tensor,
    xNorm?: Tensor,
  ): { out: Tensor; residual: Tensor } {
    const form = this.linears.inputForm(x, feeds);
    return norm.addRmsNorm(this.ctx, x, residual, weight, eps, weightOffset, form, xNorm ?? null);
  }

  layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
    return norm.layerNorm(this.ctx, x, weight, bias, eps);
  }

  add(a: Tensor, b: Tensor): Tensor {
    return elementwise.add(this.ctx, a, b);
  }

  scale(x: Tensor, factor: number, factorIn?: ScaleFactorIn): Tensor {
    return elementwise.scale(this.ctx, x, factor, factorIn);
  }

  softcap(x: Tensor, cap: number): Tensor {
    return elementwise.softcap(this.ctx, x, cap);
  }

  actMul(x: Tensor, act: GatedActivation): Tensor {
    return elementwise.actMul(this.ctx, x, act);
  }

  splitColumns(x: Tensor, sizes: readonly number[]): Tensor[] {
    return elementwise.splitColumns(this.ctx, x, sizes);
  }

  activation(x: Tensor, act: Activation): Tensor {
    return elementwise.activation(this.ctx, x, act);
  }

  tanh(x: Tensor): Tensor {
    return elementwise.tanh(this.ctx, x);
  }

  rope(...args: Parameters<Backend['rope']>): void {
    this.rotary.rope(...args);
  }

  ropeWriteKv(...args: Parameters<Backend['ropeWriteKv']>): void {
    this.rotary.ropeWriteKv(...args);
  }

  /** Decode rows in one launch where CudaQkvRope takes them, else the ops it stands for. */
  qkvRopeWriteKv(...args: Parameters<Backend['qkvRopeWriteKv']>): [Tensor, Tensor, Tensor] {
    return this.qkvRope.tryFused(...args) ?? composedQkvRopeWriteKv(this, ...args);
  }

  writeKv(k: Tensor, v: Tensor, cache: LayerKvCache, step: StepContext): void {
    this.rotary.writeKv(k, v, cache, step);
  }

  attention(q: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext, feeds?: Tensor): Tensor {
    return this.attn.attention(q, cache, spec, step, this.linears.inputForm(q, feeds));
  }

  attentionWithLse(
    q: Tensor,
    cache: LayerKvCache,
    spec: AttentionSpec,
    step: StepContext,
  ): { out: Tensor; lse: Tensor } {
    return this.attn.attentionWithLse(q, cache, spec, step);
  }

  kvKeyScores(q: Tensor, lse: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext): Tensor {
    return kvCompression.keyScores(this.ctx, q, lse, cache, spec, step);
  }

  compactKv(cache: LayerKvCache, keep: Int32Array, step: StepContext): void {
    kvCompression.compact(this.ctx, cache, keep, step);
  }

  selfAttention(q: Tensor, k: Tensor, v: Tensor, spec: AttentionSpec, step: StepContext): Tensor {
    return this.attn.selfAttention(q, k, v, spec, step);
  }

  pool(x: Tensor, step: StepContext, mode: PoolingMode): Tensor {
    return pooling.pool(this.ctx, x, step, mode);
  }

  l2Normalize(x: Tensor): Tensor {
    return pooling.l2Normalize(this.ctx, x);
  }

  gatherLogitRows(x: Tensor, step: StepContext): Tensor {
    return gatherLogitRows(this.ctx, x, step);
  }

  view(t: Tensor, shape: readonly number[]): Tensor {
    return viewOf(cuda(t), shape);
  }

  /** One device: nothing to sum (ranks over NCCL are a ParallelBackend over CUDA backends: nccl-communicator.ts). */
  allReduce(x: Tensor): Tensor {
    return x;
  }

  /** One device: nothing to gather. */
  allGather(x: Tensor): Tensor {
    return x;
  }

  async toHostAsync(t: Tensor): Promise<Float32Array> {
    const c = cuda(t);
    return decoded(await this.readbacks.read(c.ptr, c.bytes), c.dtype);
  }

  toHost(t: Tensor, rows?: readonly number[]): Float32Array {
    const c = cuda(t);
    return decoded(downloadRows(this.ctx.drv, c.ptr, c.bytes, c.shape[0]!, rows), c.dtype);
  }

  /** Sizes the sampler's buffers for `rows` x `vocab` so sampling allocates nothing later. */
  reserveSampling(rows: number, vocab: number): void {
    this.sampler.reserve(rows, vocab);
  }

  sampleTokens(logits: Tensor, rows: readonly SamplingRow[]): Int32Array {
    return this.sampler.sample(logits, rows);
  }

  sampleTokensAsync(logits: Tensor, rows: readonly SamplingRow[]): SampledIds {
    if (rows.length === 0) throw new Error('sampleTokensAsync: no rows');
    const ids = this.sampler.launch(logits, rows);
    return new DeviceSampledIds(ids, rows.length, this.readbacks.start(ids, 4 * rows.length));
  }

  /** What the device holds, for the start-up report. */
  memoryReport(): string {
    return memoryReport(this.ctx, {
      kvCacheBytes: this.kv.bytes,
      gemmWorkspaceBytes: this.linears.lt.workspaceBytes,
      dequantScratchBytes: this.linears.quant.scratchBytes,
      quantGemmWorkspaceBytes: this.linears.quant.workspaceBytes,
      expertScratchBytes: this.linears.quant.experts.bytes,
      dequantizedAtLoad: this.weightLoader.dequantizedAtLoad,
    });
  }
}
