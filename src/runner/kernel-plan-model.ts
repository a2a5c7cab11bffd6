import type { KernelPlanModel } from '../backend/cuda/kernel-plan.ts';
import type { CudaKvQuant } from '../backend/cuda/kv-layout.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import type { KernelShape } from '../models/architecture.ts';
import { isNomicBert } from '../models/bert.ts';
import { type MoeFamily, moeConfigOf } from '../models/moe.ts';
import type { QuantType } from '../primitives/ggml-types.ts';

/** What the plan knows of the weights and the cache besides the config. */
export interface KernelPlanChoices {
  /** The quantized matrices' block types (runner/weight-bytes.ts's deviceWeights). */
  quantTypes?: readonly QuantType[];
  /** The decoder layers' matrices are FP8 (--quantization fp8, or an FP8 checkpoint kept so); the LM head stays 16-bit. */
  fp8?: boolean;
  /** The KV cache's quantized storage. */
  kvQuant?: CudaKvQuant;
  /** The architecture's mixture-of-experts family (Architecture.moe). */
  moe?: MoeFamily;
  /** Where the architecture's layers differ from the Llama stack's (Architecture.kernelShape). */
  shape?: KernelShape;
  /**
   * An embedding or reranking model (models/pooling-load.ts): a BERT-style encoder (LayerNorm, learned positions and
   * a GELU MLP, or nomic-bert's rotary positions and SwiGLU MLP; bidirectional attention) or a decoder embedder (the
   * Llama stack, causal), either with no LM head.
   */
  pooling?: 'encoder' | 'decoder';
}

/**
 * The shapes a decoder's kernels are built for, from its config alone: attention per head size, and the decode
 * linears of a Llama-shaped layer (packed q/k/v, o, packed gate/up, down; a sparse layer's router and shared expert
 * instead of the last two; an encoder's ungated up and down) and the LM head (none for a pooling model), with the weights' and the cache's storage (`choices`). Models shaped
 * otherwise still run: a module the plan misses compiles on first use.
 */
export function kernelPlanModel(c: ModelConfig, maxNumSeqs: number, choices: KernelPlanChoices = {}): KernelPlanModel {
  const { headDim: D, numHeads: H, numKvHeads: Hk, hiddenSize: hidden, intermediateSize: I } = c;
  const fp8 = choices.fp8 === true;
  const encoder = choices.pooling === 'encoder';
  const shape = choices.shape ?? {};
  // An encoder: LayerNorm, learned positions and a plain GELU MLP (BERT), or nomic-bert's rotary positions and gated
  // MLP beside its LayerNorm.
  const layerNorm = encoder || shape.layerNorm === true;
  const rope = encoder ? isNomicBert(c) : shape.learnedPositions !== true;
  const gated = encoder ? isNomicBert(c) : shape.plainMlp !== true;
  const mlp = (width: number) => [
    { m: width, k: hidden, gated, fp8 },
    { m: hidden, k: width, gated: false, fp8 },
  ];
  // A family's MoE config, where its layers have experts (Granite 4.0's dense models have none).
  const moeConfig = choices.moe && moeConfigOf(choices.moe, c);
  const moe = moeConfig && moeConfig.numExperts > 0 ? moeConfig : undefined;
  const layers = Array.from({ length: c.numLayers }, (_, l) => l);
  // Mixture-of-experts weights stay 16-bit (quantize-at-load.ts fp8AtLoad): the router and shared expert too.
  const sparse = moe
    ? [
        { m: moe.numExperts, k: hidden, gated: false },
        ...(moe.sharedWidth ? [...mlp(moe.sharedWidth), { m: 1, k: hidden, gated: false }] : []),
      ]
    : [];
  // Dense layers' MLP: an MoE family's model without experts (Granite 4.0's dense ones) has it at the shared MLP's
  // width, as granite.ts builds it.
  const shared = c.raw.shared_intermediate_size;
  const denseWidth = moeConfig && !moe && typeof shared === 'number' && shared > 0 ? shared : I;
  const dense = !moe || layers.some((l) => !moe.isSparse(l)) ? mlp(denseWidth) : [];
  const qkv = { m: (H + 2 * Hk) * D, k: hidden };
  // The decoders whose packed q/k/v GEMV carries RoPE and the cache write: rotary ones without q/k norms, not over FP8
  // or GGUF weights nor into a quantized cache.
  const qkvRope =
    rope && !choices.pooling && shape.qkNorm !== true && !fp8 && !choices.quantTypes?.length && !choices.kvQuant;
  return {
    attention: [{ headDim: D, group: H / Hk }],
    linears: [
      { ...qkv, gated: false, fp8 },
      { m: hidden, k: H * D, gated: false, fp8 },
      ...dense,
      ...sparse.map((l) => ({ ...l, fp8: false })),
      ...(choices.pooling ? [] : [{ m: c.vocabSize, k: hidden, gated: false, fp8: false }]),
    ],
    act: gated ? (c.hiddenAct.includes('gelu') ? 'gelu_tanh' : 'silu') : null,
    norm: layerNorm ? 'layer' : 'rms',
    rope,
    ...(qkvRope && { qkvRope: qkv }),
    ...(choices.pooling && { selfAttention: { causal: choices.pooling === 'decoder' } }),
    normOffset: c.modelType.startsWith('gemma') ? 1 : 0,
    sandwichNorms: /^gemma[23]/.test(c.modelType),
    maxDecodeRows: maxNumSeqs,
    quantTypes: choices.quantTypes ?? [],
    ...(choices.kvQuant && { kvQuant: choices.kvQuant }),
    ...(moe && { moe: { hidden, expertWidth: moe.expertWidth } }),
  };
}
