import type { DType, HostTensor } from '../primitives/host-tensor.ts';
import type { KvQuant } from '../primitives/kv-cache-type.ts';
import type { PoolingMode } from '../primitives/pooling.ts';
import type { StepBatch } from '../primitives/step-batch.ts';
import type { MoeSpec, MoeWeights } from './moe-spec.ts';
import type { HeadNorm, RopeSpec } from './rope-spec.ts';
import type { ShardSpec } from './shard-spec.ts';

/** Where `Backend.scale`'s factor is rounded before the product: to the tensor's storage type, or to float32. */
export type ScaleFactorIn = 'storage' | 'float';

export type { DType, HostTensor, PoolingMode };

/** A tensor lives on one backend; models only pass tensors between that backend's ops. */
export interface Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/**
 * One layer's paged KV cache: K and V each `[num_blocks, block_size, num_kv_heads, head_dim]` values, in the
 * backend's own storage (only the backend that made it reads it).
 */
export interface LayerKvCache {
  readonly numBlocks: number;
}

export interface KvCacheSpec {
  numLayers: number;
  numBlocks: number;
  blockSize: number;
  numKvHeads: number;
  headDim: number;
  /** Stored quantized (primitives/kv-cache-type.ts); absent: in the backend's compute dtype. */
  quant?: KvQuant;
  /** fp8: each layer's K and V scale (a stored value times the scale is the value); absent: 1. */
  scales?: readonly { k: number; v: number }[];
}

export interface AttentionSpec {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  scale: number;
  /** Attend only to the last `slidingWindow` keys (inclusive of the query); 0 = unlimited. */
  slidingWindow: number;
  /**
   * false: every query sees every key of its sequence (encoders; `selfAttention` only). Default true: a query sees
   * the keys up to its own position.
   */
  causal?: boolean;
  /** Gemma 2's attention-logit soft-capping: each scaled score s becomes cap * tanh(s / cap) before the softmax; 0 or absent = off. */
  softcap?: number;
}

/** The activation of a gated MLP's gate: SiLU (Llama's SwiGLU) or GELU's tanh form (Gemma's GeGLU). */
export type GatedActivation = 'silu' | 'gelu_tanh';

/** A plain MLP's activation: GELU (exact, erf) or its tanh form, or ReLU² (Nemotron's squared ReLU). */
export type Activation = 'gelu' | 'gelu_tanh' | 'relu2';

/** The heads a packed q/k/v projection's columns hold: Hq query heads, then Hk key and Hk value heads, of D each. */
export type QkvHeads = Pick<AttentionSpec, 'numHeads' | 'numKvHeads' | 'headDim'>;

/**
 * A step's batch metadata uploaded once by `beginStep`; every layer then runs with no host decisions.
 * Backends subclass it with their own buffers.
 */
export interface StepContext {
  readonly batch: StepBatch;
}

/** One row's sampling for `Backend.sampleTokens` (vLLM's semantics; temperature 0 = greedy argmax). */
export interface SamplingRow {
  /** Which row of the logits tensor to sample (default: this row's index in the list). */
  logitRow?: number;
  temperature: number;
  /** 0 or >= vocab = off. */
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** Unique token ids seen so far (prompt and output): repetition penalty applies to all of them. */
  seenTokens?: Int32Array;
  /** Per seen token, how often it occurs in the output (presence/frequency penalties); 0 = prompt only. */
  seenCounts?: Int32Array;
  logitBias?: Record<number, number>;
  /**
   * Philox key; the same seed and step give the same token. There is no stream index: several samples of one
   * request (n > 1) would need distinct seeds, which is why the engine samples those on the host.
   */
  seed: number;
  /** Tokens generated so far by this sequence (the Philox counter). */
  step: number;
  /** Structured output: the tokens allowed (bit i of word i >> 5 set = token i allowed); absent = all. */
  allowedTokens?: Int32Array;
}

/** How `loadWeight` stores a weight. */
export interface WeightLoadOptions {
  transpose?: boolean;
  shard?: ShardSpec;
  quantize?: 'fp8';
}

/**
 * The operations a model forward is written in. Each returns a new tensor (the CUDA backend takes it from a
 * per-step arena, so a step's allocations are deterministic and can be captured in a CUDA graph).
 * Activations are row-major `[tokens, features]`.
 */
export interface Backend {
  readonly name: 'cpu' | 'cuda';
  /** The type weights are kept and multiplied in (an FP8 checkpoint is dequantized to it at load). */
  readonly computeDtype: DType;
  /**
   * Tensor-parallel ranks the ops run over (absent: 1). A model loads its weights with shard specs and computes with
   * its per-rank share of heads and MLP width; tensors it sees have their per-rank shapes.
   */
  readonly tensorParallelSize?: number;
  /**
   * Whether `linear` / `linearActMul` take FP8 weights (e4m3, one scale per output row): true on a CUDA device of
   * compute capability 8.9 or newer. Only such a backend is asked `quantize: 'fp8'` or given `f8_e4m3` tensors.
   */
  readonly fp8Weights?: boolean;
  /**
   * Uploads a weight; f16/bf16 are converted to the backend's compute type. `transpose` swaps a 2-D weight. A
   * quantized 2-D weight stays in blocks where the backend computes with them (the CPU backend); the CUDA backend
   * refuses it. `shard`: how ranks split it (default replicate). `quantize: 'fp8'` (backends with `fp8Weights`): a
   * 2-D matrix is stored as e4m3 with one scale per row (amax / 448), as is an `f8_e4m3` tensor's own codes; a
   * matrix whose sides are not multiples of 16 (cuBLASLt's FP8 layouts) stays in the compute type.
   */
  loadWeight(w: HostTensor, opts?: WeightLoadOptions): Tensor;
  /**
   * One weight whose rows are the parts' rows in order, for parts stored as different quantized types (a packed
   * q/k/v whose v has more bits, as llama.cpp's mixes give it). `shape`: the whole's, when it is a stack of experts'
   * matrices `[E, rows, cols]` (the CPU keeps those in blocks too, as `[E · rows, cols]`; CUDA as values).
   */
  loadStacked(parts: readonly HostTensor[], shape?: readonly number[]): Tensor;
  allocKvCache(spec: KvCacheSpec): LayerKvCache[];
  /**
   * Frees what this backend holds (weights, KV caches, scratch; the CPU's worker threads drop their views of them)
   * once its model is unloaded: nothing may use the backend or its tensors afterwards.
   */
  release(): void;
  /** Copies whole blocks src[i] -> dst[i] in every layer's K and V (copy-on-write of forked sequences). */
  copyKvBlocks(cache: readonly LayerKvCache[], src: Int32Array, dst: Int32Array): void;
  beginStep(batch: StepBatch): StepContext;

  /** Rows of `table` picked by the step's token ids, positions or token types (`batch.tokenTypeIds`, else 0). */
  embedding(
    table: Tensor,
    step: StepContext,
    index: 'tokens' | 'positions' | 'tokenTypes',
    /** Vocabulary-parallel: the table holds rows from this one on; ids outside its rows give zero rows. */
    rowOffset?: number,
  ): Tensor;
  /** x `[T, in]` times weight `[out, in]`ᵀ plus bias → `[T, out]`. */
  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor;
  /**
   * x / rms(x) times (`weightOffset` + weight), the sum taken in float32: Gemma's norms scale by (1 + w) with the
   * offset 1, as transformers computes it, never rounded to the storage type (default 0). `feeds`: the weight of the
   * linear layer that reads the output next (`linear` or `linearActMul`), a hint that changes no value: a backend
   * may write beside the output the form that linear reads its input in (CUDA: x quantized for GGUF blocks or FP8
   * weights), sparing the linear its own pass over it.
   */
  rmsNorm(x: Tensor, weight: Tensor, eps: number, weightOffset?: number, feeds?: Tensor): Tensor;
  /**
   * residual += x, then returns rmsNorm(residual) and the updated residual (fused as vLLM does). `xNorm`: x's own norm
   * weight, residual += rmsNorm(x, xNorm) (same eps and offset; its output as rmsNorm's, in the storage type) instead:
   * Gemma 2/3's sandwich norm and the next norm, one launch on the GPU.
   */
  addRmsNorm(
    x: Tensor,
    residual: Tensor,
    weight: Tensor,
    eps: number,
    weightOffset?: number,
    feeds?: Tensor,
    xNorm?: Tensor,
  ): { out: Tensor; residual: Tensor };
  layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor;
  add(a: Tensor, b: Tensor): Tensor;
  /**
   * x times `factor`. `factorIn` 'storage' (the default) first rounds the factor to x's storage type, as torch's
   * `x * tensor(factor, dtype=x.dtype)` does (Gemma's embedding normalizer sqrt(hidden): 60 in bf16 for hidden
   * 3584); 'float' keeps it in float32, as torch's `x * 0.22` does with a Python number (Granite's multipliers).
   */
  scale(x: Tensor, factor: number, factorIn?: ScaleFactorIn): Tensor;
  /** cap * tanh(x / cap) elementwise (Gemma 2's final-logit soft-capping). */
  softcap(x: Tensor, cap: number): Tensor;
  /**
   * Rotates q `[T, Hq*D]` and k `[T, Hk*D]` in place at the step's positions; with `norm`, each head is first
   * normalized in place (the norm's output rounded to the storage type, then rotated). One launch on the GPU.
   */
  rope(q: Tensor, k: Tensor, headDim: number, rope: RopeSpec, step: StepContext, norm?: HeadNorm): void;
  /**
   * vLLM's SiluAndMul / GeluAndMul: x `[T, 2I]` (gate and up packed side by side) → act(x[:, :I]) * x[:, I:] `[T, I]`.
   */
  actMul(x: Tensor, act: GatedActivation): Tensor;
  /**
   * `actMul(linear(x, weight, bias), act)` for a packed gate/up weight `[2I, in]` → `[T, I]`. A backend may fuse the
   * two (CUDA does for decode rows: the gate/up products are not stored, nor rounded, before the activation).
   * `feeds`: the weight of the linear that reads the output next (the down projection), a hint as rmsNorm's.
   */
  linearActMul(x: Tensor, weight: Tensor, bias: Tensor | undefined, act: GatedActivation, feeds?: Tensor): Tensor;
  /** act(x) element by element. */
  activation(x: Tensor, act: Activation): Tensor;
  /**
   * A mixture-of-experts MLP over x `[T, H]` → `[T, H]`: per token, the top-k experts of the router's softmax
   * (renormalised when `spec.normTopK`), each expert's SwiGLU MLP weighted by its probability, plus the shared expert
   * where there is one.
   */
  moe(x: Tensor, weights: MoeWeights, spec: MoeSpec): Tensor;
  tanh(x: Tensor): Tensor;
  /** Writes this step's k, v `[T, Hk*D]` into the cache at the step's slot_mapping (slot -1 is skipped). */
  writeKv(k: Tensor, v: Tensor, cache: LayerKvCache, step: StepContext): void;
  /** `rope(q, k, norm)` (heads of the cache's head_dim) then `writeKv(k, v)`: one launch per layer on the GPU. */
  ropeWriteKv(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    rope: RopeSpec,
    cache: LayerKvCache,
    step: StepContext,
    norm?: HeadNorm,
  ): void;
  /**
   * The packed q/k/v projection x `[T, in]` times weight `[(Hq + 2Hk) D, in]`ᵀ (+ bias) split into q `[T, Hq*D]`, k and
   * v `[T, Hk*D]`, then `ropeWriteKv(q, k, v)`: `[q, k, v]`, q and k rotated. One launch for decode rows on the GPU
   * where it can (a plain weight, a 16-bit cache, no head norm), bit for bit the composition.
   */
  qkvRopeWriteKv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | undefined,
    heads: QkvHeads,
    rope: RopeSpec,
    cache: LayerKvCache,
    step: StepContext,
    norm?: HeadNorm,
  ): [Tensor, Tensor, Tensor];
  /**
   * Causal paged attention of q `[T, Hq*D]` over the cache (this step's K/V already written) → `[T, Hq*D]`. `feeds`:
   * the weight of the linear that reads the output next (o_proj), a hint as rmsNorm's.
   */
  attention(q: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext, feeds?: Tensor): Tensor;
  /**
   * `attention`, and each query row's log-sum-exp `[T, Hq]` f32: the natural log of Σ exp(scaled score) over the keys
   * the row sees, so exp(q·k · scale − lse) is the probability softmax gives key k.
   */
  attentionWithLse(
    q: Tensor,
    cache: LayerKvCache,
    spec: AttentionSpec,
    step: StepContext,
  ): { out: Tensor; lse: Tensor };
  /**
   * SnapKV's key scores for each plan of `step.batch.kvCompression`, from this step's queries and their `lse`: for KV
   * head g and key j before the window, Σ over the window's query rows and g's query heads of exp(q·k_j · scale −
   * lse), max-pooled over `SNAPKV.poolKernel` neighbouring keys. → f32, per plan `[Hk, contextLen − window]`, plans
   * one after another.
   */
  kvKeyScores(q: Tensor, lse: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext): Tensor;
  /**
   * Compaction: for each plan of `step.batch.kvCompression`, KV head g's entries at cache indices `keep` (ascending,
   * `budget` per head, plans one after another, `[Hk, budget]` each) are moved to that head's first `budget` entries
   * of the sequence's block table, in K and V.
   */
  compactKv(cache: LayerKvCache, keep: Int32Array, step: StepContext): void;
  /**
   * Attention with no KV cache: each sequence's queries (`cuSeqlensQ`) over that sequence's own k and v of this
   * step, q `[T, Hq*D]`, k and v `[T, Hk*D]` → `[T, Hq*D]`; causal unless `spec.causal` is false (encoders).
   * Embedding models run every sequence whole in one step through it.
   */
  selfAttention(q: Tensor, k: Tensor, v: Tensor, spec: AttentionSpec, step: StepContext): Tensor;
  /** One row per sequence of the step: its rows of x `[T, H]` pooled → `[numSeqs, H]`. */
  pool(x: Tensor, step: StepContext, mode: PoolingMode): Tensor;
  /** Each row of x divided by its L2 norm (at least 1e-12, as torch's F.normalize). */
  l2Normalize(x: Tensor): Tensor;
  /** The rows of x named by the step's `logitsIndices`. */
  gatherLogitRows(x: Tensor, step: StepContext): Tensor;
  /**
   * Splits x `[T, sum(sizes)]` by columns into contiguous `[T, size_i]` parts (a packed q/k/v projection). Parts may
   * share x's storage (one row needs no copy), so writing into a part may write into x.
   */
  splitColumns(x: Tensor, sizes: readonly number[]): Tensor[];
  /** Same storage, new shape (element count must match). */
  view(t: Tensor, shape: readonly number[]): Tensor;
  /** Sums x over the tensor-parallel ranks, the sum on every rank (after a row-parallel linear); one rank: x. */
  allReduce(x: Tensor): Tensor;
  /** x `[T, c]` of every rank side by side in rank order → `[T, N·c]` on every rank (vocabulary-parallel logits); one rank: x. */
  allGather(x: Tensor): Tensor;
  /**
   * Queues a copy of a tensor to host memory behind the work queued so far and returns at once; resolves with it as
   * float32 when the device gets there, the event loop free meanwhile (`toHost` would block it while the device
   * computes). Several may be pending, so the next step can be launched before this one's rows arrive. The CPU
   * backend computes as ops are called: resolves at once.
   */
  toHostAsync(t: Tensor): Promise<Float32Array>;
  /** Copies a tensor to host memory as float32; with `rows`, only those rows of a 2-D tensor, in that order. */
  toHost(t: Tensor, rows?: readonly number[]): Float32Array;
  /**
   * Optional: samples one token per sampling row (from logits row `logitRow`) on the device so only ids come back.
   * Callers keep their CPU sampler when it is absent (or when they need logprobs).
   */
  sampleTokens?(logits: Tensor, rows: readonly SamplingRow[]): Int32Array;
  /**
   * Optional: `sampleTokens` queued behind the work so far, returning at once; the ids stay on the device, where the
   * next step may take them as its input tokens (`forwardStep`'s `inputs`), and come to the host on `collect()`.
   */
  sampleTokensAsync?(logits: Tensor, rows: readonly SamplingRow[]): SampledIds;
  /**
   * Optional: runs one step's forward, replaying a captured CUDA graph for decode steps; returns the logit rows of
   * `batch.logitsIndices`. `inputs` (from this backend's `sampleTokensAsync`): the batch's first `inputs.count` input
   * ids are those sampled ids, in order, taken on the device (the batch holds placeholders there). Callers use
   * `forward(beginStep(batch))` when it is absent.
   */
  forwardStep?(batch: StepBatch, forward: (step: StepContext) => Tensor, inputs?: SampledIds): Tensor;
}

/** Token ids sampled on the device and not yet read: one per sampling row, in the rows' order. */
export interface SampledIds {
  readonly count: number;
  /** Waits for the device to get there and returns the ids (once). */
  collect(): Int32Array;
}

/** Throws unless `sizes` (positive integers) add up to the last dim of `shape`: the precondition of splitColumns. */
export function checkColumnSplit(shape: readonly number[], sizes: readonly number[]): void {
  const width = shape[shape.length - 1];
  if (sizes.reduce((a, d) => a + d, 0) !== width || sizes.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new Error(`splitColumns: [${shape}] cannot be split into column parts [${sizes}]`);
  }
}
