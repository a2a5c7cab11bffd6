import { isQuantType } from '../../primitives/ggml-types.ts';
import { asRowMatrix } from '../../primitives/quant/stack.ts';
import type { StepBatch } from '../../primitives/step-batch.ts';
import type {
  Activation,
  AttentionSpec,
  Backend,
  GatedActivation,
  HostTensor,
  KvCacheSpec,
  LayerKvCache,
  PoolingMode,
  ScaleFactorIn,
  StepContext,
  Tensor,
} from '../backend.ts';
import type { MoeSpec, MoeWeights } from '../moe-spec.ts';
import { composedQkvRopeWriteKv } from '../qkv-rope.ts';
import type { HeadNorm, RopeSpec } from '../rope-spec.ts';
import { selfAttention, writeKvCache } from './attention.ts';
import { pickRows, splitColumnsOf } from './columns.ts';
import { activationInto, actMulInto, addInto, softcapInto } from './elementwise.ts';
import { gatherRows } from './gather.ts';
import { compactPagedKv, keyScoreCount, snapKvScores } from './kv-compression.ts';
import { type MatMul, moeInto } from './moe.ts';
import { layerNormRows, rmsNormRows } from './norm.ts';
import { l2NormalizeRows, poolRows } from './pooling.ts';
import { applyRope, ropeTables } from './rope.ts';
import { CpuStepContext, copyCpuKvBlocks, pagedOf, stepOf } from './step-context.ts';
import { CpuTensor, cpu, rowsCols } from './tensor.ts';
import { threadedLinear, threadedMatMul, threadedPagedAttention } from './threaded-ops.ts';
import { defaultThreads } from './threads.ts';
import { CpuWeights } from './weights.ts';

/**
 * The reference backend: plain TypeScript over Float32Array, everything computed in f32 (sums in f64).
 * Large linear() and attention calls are split (by output columns, by query heads) over worker threads (`threads`,
 * default the machine's parallelism up to 8); each column is computed by the same code either way, so results are
 * identical.
 */
export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly computeDtype = 'f32' as const;
  readonly threads: number;
  private readonly memory: CpuWeights;
  /** `linear` without bias over a matrix inside a stacked weight: one expert's projection. */
  private readonly matmul: MatMul;

  /**
   * Quantized weights' blocks go to WebAssembly memory for the SIMD kernels, unless `simd: false`: the same results
   * for up to 3 tokens a step; from 4 on the JavaScript path multiplies dequantized f32 rows (other float rounding).
   */
  constructor(opts?: { threads?: number; simd?: boolean }) {
    this.threads = opts?.threads ?? defaultThreads();
    this.memory = new CpuWeights(this.threads, opts?.simd !== false);
    this.matmul = threadedMatMul(this.threads);
  }

  loadWeight(w: HostTensor, opts?: { transpose?: boolean }): Tensor {
    // A quantized matrix stays in blocks, and so does a stack of them (experts `[E, rows, cols]`, kept as
    // `[E · rows, cols]`: moe.ts reads each expert's rows); anything else quantized (a 1-D norm, a weight to
    // transpose) becomes float.
    if (isQuantType(w.dtype) && w.shape.length >= 2 && !opts?.transpose) return this.loadStacked([asRowMatrix(w)]);
    return this.memory.loadFloat(w, opts);
  }

  loadStacked(parts: readonly HostTensor[]): Tensor {
    return this.memory.loadStacked(parts);
  }

  allocKvCache(spec: KvCacheSpec): LayerKvCache[] {
    return this.memory.allocKvCache(spec);
  }

  /** The worker threads (shared by every CPU backend of the process) drop their views of this one's memory. */
  release(): void {
    this.memory.release();
  }

  copyKvBlocks(cache: readonly LayerKvCache[], src: Int32Array, dst: Int32Array): void {
    copyCpuKvBlocks(cache, src, dst);
  }

  beginStep(batch: StepBatch): StepContext {
    return new CpuStepContext(batch);
  }

  embedding(
    table: Tensor,
    step: StepContext,
    index: 'tokens' | 'positions' | 'tokenTypes',
    rowOffset?: number,
  ): Tensor {
    const b = step.batch;
    const ids =
      index === 'tokens'
        ? b.inputIds
        : index === 'positions'
          ? b.positions
          : (b.tokenTypeIds ?? new Int32Array(b.inputIds.length));
    return gatherRows(table, ids, index, rowOffset);
  }

  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    return threadedLinear(x, weight, bias, this.threads);
  }

  moe(x: Tensor, weights: MoeWeights, spec: MoeSpec): Tensor {
    const xt = cpu(x);
    const [T, H] = rowsCols(xt);
    const out = CpuTensor.zeros([T, H]);
    moeInto(xt.data, T, H, weights, spec, this.matmul, out.data);
    return out;
  }

  rmsNorm(x: Tensor, weight: Tensor, eps: number, weightOffset = 0): Tensor {
    const xt = cpu(x);
    const [rows, n] = rowsCols(xt);
    const out = CpuTensor.zeros(xt.shape);
    rmsNormRows(xt.data, cpu(weight).data, eps, out.data, rows, n, weightOffset);
    return out;
  }

  /** With `xNorm`: x through this backend's own rmsNorm (overrides included), as the unfused ops would run it. */
  addRmsNorm(
    x: Tensor,
    residual: Tensor,
    weight: Tensor,
    eps: number,
    weightOffset = 0,
    _feeds?: Tensor,
    xNorm?: Tensor,
  ): { out: Tensor; residual: Tensor } {
    const r = cpu(residual);
    addInto(r.data, cpu(xNorm ? this.rmsNorm(x, xNorm, eps, weightOffset) : x).data, r.data);
    return { out: this.rmsNorm(r, weight, eps, weightOffset), residual: r };
  }

  layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
    const xt = cpu(x);
    const [rows, n] = rowsCols(xt);
    const out = CpuTensor.zeros(xt.shape);
    layerNormRows(xt.data, cpu(weight).data, cpu(bias).data, eps, out.data, rows, n);
    return out;
  }

  add(a: Tensor, b: Tensor): Tensor {
    const at = cpu(a);
    const out = CpuTensor.zeros(at.shape);
    addInto(at.data, cpu(b).data, out.data);
    return out;
  }

  /** The CPU computes in float32, its storage type: the factor is rounded to it whatever `factorIn` says. */
  scale(x: Tensor, factor: number, _factorIn?: ScaleFactorIn): Tensor {
    const xt = cpu(x);
    const f = Math.fround(factor);
    return new CpuTensor(
      xt.shape,
      xt.data.map((v) => v * f),
    );
  }

  softcap(x: Tensor, cap: number): Tensor {
    const xt = cpu(x);
    const out = CpuTensor.zeros(xt.shape);
    softcapInto(xt.data, cap, out.data);
    return out;
  }

  /** With `norm`: each head through this backend's own rmsNorm (overrides included), in place, then the rotation. */
  rope(q: Tensor, k: Tensor, headDim: number, rope: RopeSpec, step: StepContext, norm?: HeadNorm): void {
    const ctx = stepOf(step);
    let tables = ctx.ropeCache.get(rope);
    if (!tables) {
      tables = ropeTables(rope, ctx.batch.positions);
      ctx.ropeCache.set(rope, tables);
    }
    for (const [x, w] of [
      [cpu(q), norm?.q],
      [cpu(k), norm?.k],
    ] as const) {
      const [T, width] = rowsCols(x);
      const heads = this.view(x, [(T * width) / headDim, headDim]);
      if (norm && w) x.data.set(cpu(this.rmsNorm(heads, w, norm.eps, norm.weightOffset)).data);
      applyRope(x.data, T, width / headDim, headDim, rope, tables.cos, tables.sin);
    }
  }

  actMul(x: Tensor, act: GatedActivation): Tensor {
    const xt = cpu(x);
    const [T, width] = rowsCols(xt);
    if (width % 2) throw new Error(`actMul: input [${xt.shape}] has an odd number of columns`);
    const out = CpuTensor.zeros([T, width / 2]);
    actMulInto(xt.data, out.data, T, width / 2, act);
    return out;
  }

  /** Exactly the composition (through this backend's own linear and actMul, overrides included). */
  linearActMul(x: Tensor, weight: Tensor, bias: Tensor | undefined, act: GatedActivation): Tensor {
    return this.actMul(this.linear(x, weight, bias), act);
  }

  activation(x: Tensor, act: Activation): Tensor {
    const xt = cpu(x);
    const out = CpuTensor.zeros(xt.shape);
    activationInto(xt.data, out.data, act);
    return out;
  }

  tanh(x: Tensor): Tensor {
    const xt = cpu(x);
    return new CpuTensor(xt.shape, xt.data.map(Math.tanh));
  }

  writeKv(k: Tensor, v: Tensor, cache: LayerKvCache, step: StepContext): void {
    writeKvCache(cpu(k).data, cpu(v).data, pagedOf(cache), step.batch.slotMapping);
  }

  ropeWriteKv(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    rope: RopeSpec,
    cache: LayerKvCache,
    step: StepContext,
    norm?: HeadNorm,
  ): void {
    this.rope(q, k, pagedOf(cache).headDim, rope, step, norm);
    this.writeKv(k, v, cache, step);
  }

  qkvRopeWriteKv(...args: Parameters<Backend['qkvRopeWriteKv']>): [Tensor, Tensor, Tensor] {
    return composedQkvRopeWriteKv(this, ...args);
  }

  attention(q: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext): Tensor {
    return threadedPagedAttention(q, cache, spec, step, this.threads);
  }

  attentionWithLse(
    q: Tensor,
    cache: LayerKvCache,
    spec: AttentionSpec,
    step: StepContext,
  ): { out: Tensor; lse: Tensor } {
    const lse = CpuTensor.zeros([cpu(q).shape[0]!, spec.numHeads]);
    return { out: threadedPagedAttention(q, cache, spec, step, this.threads, lse), lse };
  }

  kvKeyScores(q: Tensor, lse: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext): Tensor {
    const out = CpuTensor.zeros([keyScoreCount(step.batch, spec.numKvHeads)]);
    snapKvScores(cpu(q).data, cpu(lse).data, pagedOf(cache), spec, step.batch, out.data);
    return out;
  }

  compactKv(cache: LayerKvCache, keep: Int32Array, step: StepContext): void {
    compactPagedKv(pagedOf(cache), keep, step.batch);
  }

  selfAttention(q: Tensor, k: Tensor, v: Tensor, spec: AttentionSpec, step: StepContext): Tensor {
    const qt = cpu(q);
    const out = CpuTensor.zeros(qt.shape);
    selfAttention(qt.data, cpu(k).data, cpu(v).data, spec, step.batch.cuSeqlensQ, out.data);
    return out;
  }

  pool(x: Tensor, step: StepContext, mode: PoolingMode): Tensor {
    const xt = cpu(x);
    const [, n] = rowsCols(xt);
    const out = CpuTensor.zeros([step.batch.numSeqs, n]);
    poolRows(xt.data, n, step.batch.cuSeqlensQ, mode, out.data);
    return out;
  }

  l2Normalize(x: Tensor): Tensor {
    const xt = cpu(x);
    const out = CpuTensor.zeros(xt.shape);
    l2NormalizeRows(xt.data, rowsCols(xt)[1], out.data);
    return out;
  }

  gatherLogitRows(x: Tensor, step: StepContext): Tensor {
    return pickRows(cpu(x), step.batch.logitsIndices);
  }

  splitColumns(x: Tensor, sizes: readonly number[]): Tensor[] {
    return splitColumnsOf(cpu(x), sizes);
  }

  /** One rank: nothing to sum, nothing to gather. */
  allReduce(x: Tensor): Tensor {
    return x;
  }

  allGather(x: Tensor): Tensor {
    return x;
  }

  view(t: Tensor, shape: readonly number[]): Tensor {
    return new CpuTensor([...shape], cpu(t).data);
  }

  /** Every op has run by the time it returns. */
  toHostAsync(t: Tensor): Promise<Float32Array> {
    return Promise.resolve(this.toHost(t));
  }

  toHost(t: Tensor, rows?: readonly number[]): Float32Array {
    const data = cpu(t).data;
    if (!rows) return data.slice();
    const n = t.shape.at(-1)!;
    const out = new Float32Array(rows.length * n);
    for (const [i, r] of rows.entries()) out.set(data.subarray(r * n, (r + 1) * n), i * n);
    return out;
  }
}
