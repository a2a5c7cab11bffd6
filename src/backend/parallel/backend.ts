import { isQuantType } from '../../primitives/ggml-types.ts';
import type { StepBatch } from '../../primitives/step-batch.ts';
import { UserError } from '../../util/errors.ts';
import type {
  Activation,
  AttentionSpec,
  Backend,
  GatedActivation,
  HostTensor,
  KvCacheSpec,
  LayerKvCache,
  PoolingMode,
  QkvHeads,
  SamplingRow,
  ScaleFactorIn,
  StepContext,
  Tensor,
} from '../backend.ts';
import type { MoeSpec, MoeWeights } from '../moe-spec.ts';
import type { HeadNorm, RopeSpec } from '../rope-spec.ts';
import type { ShardSpec } from '../shard-spec.ts';
import { type Communicator, HostCommunicator } from './communicator.ts';
import { shardHost } from './shard.ts';

/** One tensor per rank, each of the same per-rank shape. */
class RankTensors implements Tensor {
  readonly shape: readonly number[];
  readonly dtype: Tensor['dtype'];
  constructor(
    readonly parts: readonly Tensor[],
    /** A table split by rows over the ranks (vocabulary-parallel): where each rank's rows start. */
    readonly rowOffsets?: readonly number[],
  ) {
    this.shape = parts[0]!.shape;
    this.dtype = parts[0]!.dtype;
  }
}

class RankKv implements LayerKvCache {
  readonly numBlocks: number;
  constructor(readonly parts: readonly LayerKvCache[]) {
    this.numBlocks = parts[0]!.numBlocks;
  }
}

class RankSteps implements StepContext {
  constructor(
    readonly batch: StepBatch,
    readonly parts: readonly StepContext[],
  ) {}
}

function rankPart<T>(x: unknown, kind: new (...args: never[]) => { parts: readonly T[] }, r: number): T {
  if (!(x instanceof kind)) throw new Error('a tensor, cache or step of another backend was given to the parallel one');
  return x.parts[r]!;
}
const at = (t: Tensor, r: number) => rankPart<Tensor>(t, RankTensors, r);
const kvAt = (c: LayerKvCache, r: number) => rankPart<LayerKvCache>(c, RankKv, r);
const stepAt = (s: StepContext, r: number) => rankPart<StepContext>(s, RankSteps, r);
const normAt = (n: HeadNorm | undefined, r: number): HeadNorm | undefined =>
  n && { ...n, q: at(n.q, r), k: at(n.k, r) };

/**
 * Tensor parallelism as one program over N rank backends of one kind (SPMD in one process): weights are split per
 * rank by their shard specs at load, every op runs on each rank's share, and `allReduce` / `allGather` combine the
 * ranks through a `Communicator`. `toHost` reads rank 0, and rank 0 samples where its backend can.
 */
export class ParallelBackend implements Backend {
  readonly name: Backend['name'];
  readonly computeDtype: Backend['computeDtype'];
  readonly tensorParallelSize: number;
  /** Rank 0's sampler, on its copy of the logits (every rank holds them all after the LM head's gather). */
  readonly sampleTokens?: (logits: Tensor, rows: readonly SamplingRow[]) => Int32Array;

  constructor(
    readonly ranks: readonly Backend[],
    private readonly comm: Communicator = new HostCommunicator(ranks),
  ) {
    if (ranks.length < 1 || ranks.some((b) => b.name !== ranks[0]!.name || (b.tensorParallelSize ?? 1) !== 1)) {
      throw new Error('a parallel backend needs one or more single-rank backends of one kind');
    }
    this.name = ranks[0]!.name;
    this.computeDtype = ranks[0]!.computeDtype;
    this.tensorParallelSize = ranks.length;
    const first = ranks[0]!;
    if (first.sampleTokens) this.sampleTokens = (logits, rows) => first.sampleTokens!(at(logits, 0), rows);
  }

  /**
   * One rank runs the step through its own forwardStep (a CUDA rank replays decode steps from graphs, the
   * collectives captured in them); several ranks run it eagerly.
   */
  forwardStep(batch: StepBatch, forward: (step: StepContext) => Tensor): Tensor {
    const only = this.ranks.length === 1 ? this.ranks[0]! : undefined;
    if (!only?.forwardStep) return forward(this.beginStep(batch));
    return new RankTensors([only.forwardStep(batch, (step) => at(forward(new RankSteps(step.batch, [step])), 0))]);
  }

  private each(op: (b: Backend, r: number) => Tensor): Tensor {
    return new RankTensors(this.ranks.map(op));
  }

  loadWeight(w: HostTensor, opts?: { transpose?: boolean; shard?: ShardSpec }): Tensor {
    if (isQuantType(w.dtype)) return this.loadStacked([w]);
    const spec = opts?.shard ?? { split: 'replicate' };
    if (opts?.transpose && spec.split !== 'replicate') throw new Error(`${w.name}: a transposed weight is not split`);
    const N = this.ranks.length;
    const parts = this.ranks.map((b, r) => b.loadWeight(shardHost(w, spec, r, N), { transpose: opts?.transpose }));
    // A plain row split (no packed parts) may be an embedding table: its rows start at rank x its share.
    const byRows = spec.split === 'out' && !spec.parts && N > 1;
    return new RankTensors(parts, byRows ? parts.map((p, r) => r * p.shape[0]!) : undefined);
  }

  loadStacked(parts: readonly HostTensor[]): Tensor {
    throw new UserError(
      `${parts[0]!.name}: ${parts[0]!.dtype} weights cannot be split over tensor-parallel ranks yet; use a 16- or 32-bit checkpoint`,
    );
  }

  allocKvCache(spec: KvCacheSpec): LayerKvCache[] {
    const perRank = this.ranks.map((b) => b.allocKvCache(spec));
    return perRank[0]!.map((_, layer) => new RankKv(perRank.map((caches) => caches[layer]!)));
  }

  release(): void {
    for (const b of this.ranks) b.release();
    this.comm.release?.();
  }

  copyKvBlocks(cache: readonly LayerKvCache[], src: Int32Array, dst: Int32Array): void {
    this.ranks.forEach((b, r) => {
      b.copyKvBlocks(
        cache.map((c) => kvAt(c, r)),
        src,
        dst,
      );
    });
  }

  beginStep(batch: StepBatch): StepContext {
    return new RankSteps(
      batch,
      this.ranks.map((b) => b.beginStep(batch)),
    );
  }

  embedding(table: Tensor, step: StepContext, index: 'tokens' | 'positions' | 'tokenTypes'): Tensor {
    const offsets = table instanceof RankTensors ? table.rowOffsets : undefined;
    const rows = this.each((b, r) => b.embedding(at(table, r), stepAt(step, r), index, offsets?.[r]));
    // Vocabulary-parallel: each rank found the ids it holds (zeros elsewhere); their sum is every row.
    return offsets ? this.allReduce(rows) : rows;
  }
  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
    return this.each((b, r) => b.linear(at(x, r), at(weight, r), bias && at(bias, r)));
  }
  rmsNorm(x: Tensor, weight: Tensor, eps: number, weightOffset?: number, feeds?: Tensor): Tensor {
    return this.each((b, r) => b.rmsNorm(at(x, r), at(weight, r), eps, weightOffset, feeds && at(feeds, r)));
  }
  addRmsNorm(
    x: Tensor,
    residual: Tensor,
    weight: Tensor,
    eps: number,
    weightOffset?: number,
    feeds?: Tensor,
    xNorm?: Tensor,
  ) {
    const outs = this.ranks.map((b, r) =>
      b.addRmsNorm(
        at(x, r),
        at(residual, r),
        at(weight, r),
        eps,
        weightOffset,
        feeds && at(feeds, r),
        xNorm && at(xNorm, r),
      ),
    );
    return { out: new RankTensors(outs.map((o) => o.out)), residual: new RankTensors(outs.map((o) => o.residual)) };
  }
  layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
    return this.each((b, r) => b.layerNorm(at(x, r), at(weight, r), at(bias, r), eps));
  }
  add(a: Tensor, c: Tensor): Tensor {
    return this.each((b, r) => b.add(at(a, r), at(c, r)));
  }
  scale(x: Tensor, factor: number, factorIn?: ScaleFactorIn): Tensor {
    return this.each((b, r) => b.scale(at(x, r), factor, factorIn));
  }
  softcap(x: Tensor, cap: number): Tensor {
    return this.each((b, r) => b.softcap(at(x, r), cap));
  }
  rope(q: Tensor, k: Tensor, headDim: number, rope: RopeSpec, step: StepContext, norm?: HeadNorm): void {
    this.ranks.forEach((b, r) => {
      b.rope(at(q, r), at(k, r), headDim, rope, stepAt(step, r), normAt(norm, r));
    });
  }
  actMul(x: Tensor, act: GatedActivation): Tensor {
    return this.each((b, r) => b.actMul(at(x, r), act));
  }
  linearActMul(x: Tensor, weight: Tensor, bias: Tensor | undefined, act: GatedActivation, feeds?: Tensor): Tensor {
    return this.each((b, r) =>
      b.linearActMul(at(x, r), at(weight, r), bias && at(bias, r), act, feeds && at(feeds, r)),
    );
  }
  activation(x: Tensor, act: Activation): Tensor {
    return this.each((b, r) => b.activation(at(x, r), act));
  }
  /** Each rank runs every expert (experts are not split yet). */
  moe(x: Tensor, w: MoeWeights, spec: MoeSpec): Tensor {
    const shared = (r: number) =>
      w.shared && {
        gateUp: at(w.shared.gateUp, r),
        down: at(w.shared.down, r),
        gate: w.shared.gate && at(w.shared.gate, r),
      };
    return this.each((b, r) =>
      b.moe(
        at(x, r),
        { router: at(w.router, r), gateUp: at(w.gateUp, r), down: at(w.down, r), shared: shared(r) },
        spec,
      ),
    );
  }
  tanh(x: Tensor): Tensor {
    return this.each((b, r) => b.tanh(at(x, r)));
  }
  writeKv(k: Tensor, v: Tensor, cache: LayerKvCache, step: StepContext): void {
    this.ranks.forEach((b, r) => {
      b.writeKv(at(k, r), at(v, r), kvAt(cache, r), stepAt(step, r));
    });
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
    this.ranks.forEach((b, r) => {
      b.ropeWriteKv(at(q, r), at(k, r), at(v, r), rope, kvAt(cache, r), stepAt(step, r), normAt(norm, r));
    });
  }
  /** Each rank's own heads: its share of the packed q/k/v rows (models/tensor-parallel.ts), `heads` per rank. */
  qkvRopeWriteKv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | undefined,
    heads: QkvHeads,
    rope: RopeSpec,
    cache: LayerKvCache,
    step: StepContext,
    norm?: HeadNorm,
  ): [Tensor, Tensor, Tensor] {
    const perRank = this.ranks.map((b, r) =>
      b.qkvRopeWriteKv(
        at(x, r),
        at(weight, r),
        bias && at(bias, r),
        heads,
        rope,
        kvAt(cache, r),
        stepAt(step, r),
        normAt(norm, r),
      ),
    );
    const part = (i: number) => new RankTensors(perRank.map((parts) => parts[i]!));
    return [part(0), part(1), part(2)];
  }
  attention(q: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext, feeds?: Tensor): Tensor {
    return this.each((b, r) => b.attention(at(q, r), kvAt(cache, r), spec, stepAt(step, r), feeds && at(feeds, r)));
  }
  attentionWithLse(q: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext) {
    const outs = this.ranks.map((b, r) => b.attentionWithLse(at(q, r), kvAt(cache, r), spec, stepAt(step, r)));
    return { out: new RankTensors(outs.map((o) => o.out)), lse: new RankTensors(outs.map((o) => o.lse)) };
  }
  /** SnapKV picks kept keys on the host from one rank's scores; each rank's KV heads would need their own pick. */
  kvKeyScores(): Tensor {
    throw new UserError('--kv-compression cannot run with tensor parallelism yet');
  }
  compactKv(): void {
    throw new UserError('--kv-compression cannot run with tensor parallelism yet');
  }
  selfAttention(q: Tensor, k: Tensor, v: Tensor, spec: AttentionSpec, step: StepContext): Tensor {
    return this.each((b, r) => b.selfAttention(at(q, r), at(k, r), at(v, r), spec, stepAt(step, r)));
  }
  pool(x: Tensor, step: StepContext, mode: PoolingMode): Tensor {
    return this.each((b, r) => b.pool(at(x, r), stepAt(step, r), mode));
  }
  l2Normalize(x: Tensor): Tensor {
    return this.each((b, r) => b.l2Normalize(at(x, r)));
  }
  gatherLogitRows(x: Tensor, step: StepContext): Tensor {
    return this.each((b, r) => b.gatherLogitRows(at(x, r), stepAt(step, r)));
  }
  splitColumns(x: Tensor, sizes: readonly number[]): Tensor[] {
    const perRank = this.ranks.map((b, r) => b.splitColumns(at(x, r), sizes));
    return sizes.map((_, i) => new RankTensors(perRank.map((parts) => parts[i]!)));
  }
  view(t: Tensor, shape: readonly number[]): Tensor {
    return this.each((b, r) => b.view(at(t, r), shape));
  }
  allReduce(x: Tensor): Tensor {
    return new RankTensors(this.comm.allReduce(this.ranks.map((_, r) => at(x, r))));
  }
  allGather(x: Tensor): Tensor {
    return new RankTensors(this.comm.allGather(this.ranks.map((_, r) => at(x, r))));
  }
  /** Rank 0's copy, as `toHost`. */
  toHostAsync(t: Tensor): Promise<Float32Array> {
    return this.ranks[0]!.toHostAsync(at(t, 0));
  }

  /** Rank 0's copy: after the final gather every rank holds the same logits. */
  toHost(t: Tensor, rows?: readonly number[]): Float32Array {
    return this.ranks[0]!.toHost(at(t, 0), rows);
  }
}
