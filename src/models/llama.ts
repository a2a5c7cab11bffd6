import type { Activation, AttentionSpec, Backend, LayerKvCache, StepContext, Tensor } from '../backend/backend.ts';
import type { HeadNorm, RopeSpec } from '../backend/rope-spec.ts';
import type { ShardSpec } from '../backend/shard-spec.ts';
import type { GraniteMultipliers } from '../loader/granite-config.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import type { Architecture, BuildOptions } from './architecture.ts';
import { decoderRoot } from './decoder-root.ts';
import { cachedAttention } from './kv-compression.ts';
import type { Encoder, Model } from './model.ts';
import { loadMoeBlock, type MoeBlock, type MoeFamily, moeConfigOf } from './moe.ts';
import { ropeSpecFromConfig, withoutRotation } from './rope.ts';
import { COLUMN_PARALLEL, ROW_PARALLEL, ROW_PARALLEL_BIAS, rankShare, VOCAB_PARALLEL } from './tensor-parallel.ts';
import type { ModelWeights } from './weights.ts';

/** What distinguishes the Llama family's members; everything else is read from the config. */
export interface LlamaOptions {
  /** Bias on q/k/v projections (Qwen2 always; Llama when `attention_bias`, which also biases o_proj). */
  qkvBias: boolean;
  /**
   * q and k RMSNormed before RoPE: each head alone (Qwen3; weights `[D]`, applied by RoPE's HeadNorm) or across all
   * heads (OLMoE; weights `[Hq*D]` and `[Hk*D]`); not at all where absent.
   */
  qkNorm?: 'per-head' | 'across-heads';
  /**
   * q/k/v stored packed as `qkv_proj` and gate/up as `gate_up_proj`, in the order the stack uses (Phi-3); a
   * `qkv_proj` is read wherever a checkpoint has one.
   */
  fusedProjections?: boolean;
  /**
   * A dense MLP's gate/up stored packed (GLM's `mlp.gate_up_proj`; Granite 4's `shared_mlp.input_linear`, its down
   * projection `shared_mlp.output_linear`): the two tensors' names under the layer.
   */
  fusedMlp?: { gateUp: string; down: string };
  /** Bias on o_proj: the config's `attention_bias` where absent (GLM-4 biases q/k/v only, and says `attention_bias`). */
  oBias?: boolean;
  /** How RoPE pairs a head's dimensions: NeoX's halves where absent, GPT-J's neighbours (GLM-4). */
  ropeStyle?: RopeSpec['style'];
  /**
   * GLM-4's sandwich: the attention output and the MLP output each RMSNormed (`post_self_attn_layernorm`,
   * `post_mlp_layernorm`) before its residual add.
   */
  sandwichNorms?: boolean;
  /** A plain MLP (up_proj, this activation, down_proj) instead of SwiGLU: Arcee's ReLU². */
  plainMlp?: Activation;
  /** Sparse mixture-of-experts MLPs (Qwen-MoE, Mixtral) in the layers the config makes sparse. */
  moe?: MoeFamily;
  /**
   * Granite's multipliers; none for the others. Each product is taken with the factor in float32, as transformers
   * multiplies by a Python number.
   */
  multipliers?: GraniteMultipliers;
  /** Which layers rotate q and k (SmolLM3 leaves every fourth as it is); every layer where absent. */
  rotatedLayers?: (cfg: ModelConfig) => boolean[];
}

interface Linear {
  weight: Tensor;
  bias?: Tensor;
}

interface LlamaLayer {
  inputNorm: Tensor;
  /** q_proj, k_proj and v_proj packed along the output features: one linear gives `[T, qDim + 2 * kvDim]`. */
  qkv: Linear;
  o: Linear;
  qNorm?: Tensor;
  kNorm?: Tensor;
  /** The q/k norms span all heads (LlamaOptions.qkNorm 'across-heads'), so they run apart, before RoPE. */
  qkNormAcrossHeads: boolean;
  postNorm: Tensor;
  /** GLM-4's norms of the attention and MLP outputs, before each is added (LlamaOptions.sandwichNorms). */
  attnOutNorm?: Tensor;
  mlpOutNorm?: Tensor;
  /** A dense SwiGLU MLP, or a sparse mixture of experts. */
  mlp: DenseMlp | { moe: MoeBlock };
  attention: AttentionSpec;
  /** The model's rotary embedding, or none (withoutRotation) in a NoPE layer. */
  rope: RopeSpec;
}

/** SwiGLU: gate_proj and up_proj packed the same way, for `linearActMul` (actMul's `[T, 2I]` input); or plain. */
type DenseMlp = { gateUp: Linear; down: Linear } | { up: Linear; act: Activation; down: Linear };

/** The decoder stack of the Llama family: token embeddings, pre-norm layers (RoPE, GQA, SwiGLU MLP), final norm. */
class LlamaStack {
  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    readonly embedTable: Tensor,
    readonly layers: LlamaLayer[],
    readonly finalNorm: Tensor,
    readonly multipliers?: GraniteMultipliers,
  ) {}

  /**
   * The last layer's output (before the final norm) for every token of the step: attention reads the paged cache, or,
   * with none, each sequence's own keys of this step (causal).
   */
  run(step: StepContext, kvCache: readonly LayerKvCache[] | null): Tensor {
    const b = this.backend;
    const eps = this.config.normEps;
    const m = this.multipliers;
    let residual = b.embedding(this.embedTable, step, 'tokens');
    if (m) residual = b.scale(residual, m.embedding, 'float');
    /** A residual branch as it is added (Granite scales it). */
    const branch = (x: Tensor) => (m ? b.scale(x, m.residual, 'float') : x);
    // Each norm names the linear its output feeds, whose input form a backend may write beside it (Backend.rmsNorm).
    let x = b.rmsNorm(residual, this.layers[0]!.inputNorm, eps, 0, this.layers[0]!.qkv.weight);
    // The last MLP output and (GLM-4) its norm: applied by the next addRmsNorm (xNorm), in its launch.
    let mlp: Tensor | null = null;
    let mlpNorm: Tensor | undefined;
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i]!;
      if (mlp) {
        ({ out: x, residual } = b.addRmsNorm(mlp, residual, layer.inputNorm, eps, 0, layer.qkv.weight, mlpNorm));
      }
      const attn = branch(this.attention(x, layer, kvCache?.[i] ?? null, step));
      ({ out: x, residual } = b.addRmsNorm(
        attn,
        residual,
        layer.postNorm,
        eps,
        0,
        mlpInput(layer.mlp),
        layer.attnOutNorm,
      ));
      mlp = branch(
        'moe' in layer.mlp ? b.moe(x, layer.mlp.moe.weights, layer.mlp.moe.spec) : denseMlp(b, x, layer.mlp),
      );
      mlpNorm = layer.mlpOutNorm;
    }
    return b.add(mlpNorm ? b.rmsNorm(mlp!, mlpNorm, eps) : mlp!, residual);
  }

  private attention(x: Tensor, layer: LlamaLayer, cache: LayerKvCache | null, step: StepContext): Tensor {
    const b = this.backend;
    const eps = this.config.normEps;
    const { numHeads, numKvHeads, headDim } = layer.attention;
    if (cache && !layer.qkNormAcrossHeads) {
      const { weight, bias } = layer.qkv;
      const norm = headNormOf(layer, eps);
      const [q] = b.qkvRopeWriteKv(x, weight, bias, layer.attention, layer.rope, cache, step, norm);
      return b.allReduce(linear(b, cachedAttention(b, q, cache, layer.attention, step, layer.o.weight), layer.o));
    }
    const kvDim = numKvHeads * headDim;
    const qkv = b.splitColumns(linear(b, x, layer.qkv), [numHeads * headDim, kvDim, kvDim]);
    let [q, k, v] = [qkv[0]!, qkv[1]!, qkv[2]!];
    if (layer.qkNormAcrossHeads) [q, k] = [b.rmsNorm(q, layer.qNorm!, eps), b.rmsNorm(k, layer.kNorm!, eps)];
    if (!cache) {
      b.rope(q, k, headDim, layer.rope, step, layer.qkNormAcrossHeads ? undefined : headNormOf(layer, eps));
      return b.allReduce(linear(b, b.selfAttention(q, k, v, layer.attention, step), layer.o));
    }
    b.ropeWriteKv(q, k, v, layer.rope, cache, step);
    return b.allReduce(linear(b, cachedAttention(b, q, cache, layer.attention, step, layer.o.weight), layer.o));
  }
}

/** Llama, Mistral, Qwen2 and Qwen3 as causal LMs: the stack, then the LM head over the rows whose logits are asked. */
export class LlamaModel implements Model {
  readonly compactsKv = true;
  readonly kvShape: Model['kvShape'];
  readonly config: ModelConfig;
  readonly backend: Backend;

  constructor(
    private readonly stack: LlamaStack,
    private readonly lmHead: Tensor,
  ) {
    this.config = stack.config;
    this.backend = stack.backend;
    // Each rank caches its own KV heads.
    const numKvHeads = stack.layers[0]?.attention.numKvHeads ?? this.config.numKvHeads;
    this.kvShape = { numLayers: stack.layers.length, numKvHeads, headDim: this.config.headDim };
  }

  forward(step: StepContext, kvCache: readonly LayerKvCache[]): Tensor {
    const b = this.backend;
    const last = b.gatherLogitRows(this.stack.run(step, kvCache), step);
    // Each rank's vocabulary slice, gathered so every rank holds whole logits.
    const x = b.rmsNorm(last, this.stack.finalNorm, this.config.normEps, 0, this.lmHead);
    const logits = b.allGather(b.linear(x, this.lmHead));
    const divisor = this.stack.multipliers?.logitsDivisor ?? 1;
    return divisor === 1 ? logits : b.scale(logits, 1 / divisor, 'float');
  }
}

/** The same stack as an embedding model's encoder (Qwen3-Embedding): causal, no KV cache, every token's state. */
export class LlamaEncoder implements Encoder {
  readonly config: ModelConfig;
  readonly backend: Backend;
  readonly maxPositions: number;

  constructor(private readonly stack: LlamaStack) {
    this.config = stack.config;
    this.backend = stack.backend;
    this.maxPositions = stack.config.maxPositionEmbeddings;
  }

  hiddenStates(step: StepContext): Tensor {
    return this.backend.rmsNorm(this.stack.run(step, null), this.stack.finalNorm, this.config.normEps);
  }
}

function linear(b: Backend, x: Tensor, l: Linear): Tensor {
  return b.linear(x, l.weight, l.bias);
}

/** The weight an MLP reads its input with first: a dense MLP's gate/up (none for experts: their router and GEMMs). */
function mlpInput(mlp: LlamaLayer['mlp']): Tensor | undefined {
  if ('moe' in mlp) return undefined;
  return 'gateUp' in mlp ? mlp.gateUp.weight : mlp.up.weight;
}

function denseMlp(b: Backend, x: Tensor, mlp: DenseMlp): Tensor {
  const act =
    'gateUp' in mlp
      ? b.linearActMul(x, mlp.gateUp.weight, mlp.gateUp.bias, 'silu', mlp.down.weight)
      : b.activation(linear(b, x, mlp.up), mlp.act);
  return b.allReduce(linear(b, act, mlp.down));
}

/** A layer's q_norm / k_norm as RoPE applies them first (Qwen3; Gemma 3 with its weight offset); none without. */
export function headNormOf(
  layer: { qNorm?: Tensor; kNorm?: Tensor },
  eps: number,
  weightOffset = 0,
): HeadNorm | undefined {
  return layer.qNorm && layer.kNorm ? { q: layer.qNorm, k: layer.kNorm, eps, weightOffset } : undefined;
}

/** Per-layer sliding window: `layer_types` names sliding layers where present, else the window applies to all. */
function slidingWindowOf(cfg: ModelConfig, layer: number): number {
  const types = cfg.raw.layer_types;
  if (Array.isArray(types)) return types[layer] === 'sliding_attention' ? cfg.slidingWindow : 0;
  return cfg.slidingWindow;
}

/**
 * The decoder stack's weights, as each rank's share of them where the backend has several tensor-parallel ranks
 * (tensor-parallel.ts; one rank holds them whole).
 */
function buildStack(
  opts: LlamaOptions,
  cfg: ModelConfig,
  w: ModelWeights,
  backend: Backend,
  build: BuildOptions,
): LlamaStack {
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim: D, vocabSize } = cfg;
  const share = rankShare(cfg, backend.tensorParallelSize ?? 1);
  const { root } = decoderRoot(w);
  const attnBias = opts.qkvBias || cfg.attentionBias;
  const mlpBias = cfg.raw.mlp_bias === true;
  const moe = opts.moe && moeConfigOf(opts.moe, cfg);
  const rope = ropeSpecFromConfig(cfg, opts.ropeStyle ?? 'neox', build.maxModelLen);
  const noRope = withoutRotation(rope);
  const rotated = opts.rotatedLayers?.(cfg);
  const acrossHeads = opts.qkNorm === 'across-heads';
  /** A linear split by `shard` (a row-parallel one's bias is added by rank 0 alone). */
  const lin = (name: string, out: number, inp: number, bias: boolean, shard: ShardSpec): Linear => ({
    weight: w.load(`${name}.weight`, [out, inp], { shard }),
    bias: bias ? w.load(`${name}.bias`, [out], { shard: shard.split === 'in' ? ROW_PARALLEL_BIAS : shard }) : undefined,
  });
  /** Projections `[out_i, inp]` stored apart, loaded as one packed linear (biases packed alike). */
  const packed = (parts: readonly [name: string, out: number][], inp: number, bias: boolean, shard: ShardSpec) => ({
    weight: w.loadPacked(
      parts.map(([name, out]) => ({ name: `${name}.weight`, shape: [out, inp] })),
      undefined,
      shard,
    ),
    bias: bias
      ? w.loadPacked(
          parts.map(([name, out]) => ({ name: `${name}.bias`, shape: [out] })),
          undefined,
          shard,
        )
      : undefined,
  });
  const layers = Array.from({ length: cfg.numLayers }, (_, i): LlamaLayer => {
    const p = `${root}layers.${i}`;
    return {
      inputNorm: w.load(`${p}.input_layernorm.weight`, [H]),
      // Phi-3's q/k/v are stored fused, as are those of GLM's GGUF files written from ChatGLM's checkpoints.
      qkv:
        opts.fusedProjections || w.has(`${p}.self_attn.qkv_proj.weight`)
          ? lin(`${p}.self_attn.qkv_proj`, (numHeads + 2 * numKvHeads) * D, H, attnBias, share.qkv)
          : packed(
              [
                [`${p}.self_attn.q_proj`, numHeads * D],
                [`${p}.self_attn.k_proj`, numKvHeads * D],
                [`${p}.self_attn.v_proj`, numKvHeads * D],
              ],
              H,
              attnBias,
              share.qkv,
            ),
      o: lin(`${p}.self_attn.o_proj`, H, numHeads * D, opts.oBias ?? cfg.attentionBias, ROW_PARALLEL),
      qNorm: opts.qkNorm ? w.load(`${p}.self_attn.q_norm.weight`, [acrossHeads ? numHeads * D : D]) : undefined,
      kNorm: opts.qkNorm ? w.load(`${p}.self_attn.k_norm.weight`, [acrossHeads ? numKvHeads * D : D]) : undefined,
      qkNormAcrossHeads: acrossHeads,
      postNorm: w.load(`${p}.post_attention_layernorm.weight`, [H]),
      attnOutNorm: opts.sandwichNorms ? w.load(`${p}.post_self_attn_layernorm.weight`, [H]) : undefined,
      mlpOutNorm: opts.sandwichNorms ? w.load(`${p}.post_mlp_layernorm.weight`, [H]) : undefined,
      mlp:
        opts.moe && moe?.isSparse(i)
          ? { moe: loadMoeBlock(opts.moe, moe, cfg, w, p) }
          : opts.plainMlp
            ? {
                up: lin(`${p}.mlp.up_proj`, I, H, mlpBias, COLUMN_PARALLEL),
                act: opts.plainMlp,
                down: lin(`${p}.mlp.down_proj`, H, I, mlpBias, ROW_PARALLEL),
              }
            : {
                gateUp:
                  opts.fusedProjections || opts.fusedMlp
                    ? lin(`${p}.${opts.fusedMlp?.gateUp ?? 'mlp.gate_up_proj'}`, 2 * I, H, mlpBias, share.gateUp)
                    : packed(
                        [
                          [`${p}.mlp.gate_proj`, I],
                          [`${p}.mlp.up_proj`, I],
                        ],
                        H,
                        mlpBias,
                        share.gateUp,
                      ),
                down: lin(`${p}.${opts.fusedMlp?.down ?? 'mlp.down_proj'}`, H, I, mlpBias, ROW_PARALLEL),
              },
      attention: {
        numHeads: share.numHeads,
        numKvHeads: share.numKvHeads,
        headDim: D,
        scale: opts.multipliers?.attention ?? 1 / Math.sqrt(D),
        slidingWindow: slidingWindowOf(cfg, i),
      },
      rope: rotated?.[i] === false ? noRope : rope,
    };
  });
  const embed = w.load(`${root}embed_tokens.weight`, [vocabSize, H], { shard: VOCAB_PARALLEL });
  const finalNorm = w.load(`${root}norm.weight`, [H]);
  return new LlamaStack(cfg, backend, embed, layers, finalNorm, opts.multipliers);
}

export function buildLlama(
  opts: LlamaOptions,
  cfg: ModelConfig,
  w: ModelWeights,
  backend: Backend,
  build: BuildOptions,
): LlamaModel {
  const stack = buildStack(opts, cfg, w, backend, build);
  const embed = stack.embedTable;
  // A separate lm_head when the checkpoint has one; otherwise the embeddings, if the config ties them (split by
  // vocabulary over tensor-parallel ranks, as the LM head is).
  const { vocabSize, hiddenSize: H } = cfg;
  const head = decoderRoot(w).lmHead;
  const lmHead =
    w.has(head) || !cfg.tieWordEmbeddings ? w.load(head, [vocabSize, H], { shard: VOCAB_PARALLEL }) : embed;
  return new LlamaModel(stack, lmHead);
}

/** The stack alone, as an embedding model's encoder (no LM head is loaded, tied or not). */
export function buildLlamaEncoder(opts: LlamaOptions, cfg: ModelConfig, w: ModelWeights, backend: Backend) {
  return new LlamaEncoder(buildStack(opts, cfg, w, backend, {}));
}

export const llama: Architecture = {
  names: ['LlamaForCausalLM'],
  modelTypes: ['llama'],
  tensorParallel: true,
  build: (cfg, w, backend, options) => buildLlama({ qkvBias: false }, cfg, w, backend, options),
};
