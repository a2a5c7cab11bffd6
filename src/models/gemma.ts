import type { AttentionSpec, Backend, LayerKvCache, StepContext, Tensor } from '../backend/backend.ts';
import type { RopeSpec } from '../backend/rope-spec.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import type { Architecture } from './architecture.ts';
import { decoderRoot } from './decoder-root.ts';
import { type GemmaGeneration, type GemmaSettings, gemmaSettings } from './gemma-config.ts';
import { headNormOf } from './llama.ts';
import type { Model } from './model.ts';
import type { ModelWeights } from './weights.ts';

/** Gemma's RMSNorms scale by (1 + w): the backends' weight offset. */
const OFFSET = 1;

interface GemmaLayer {
  inputNorm: Tensor;
  /** q_proj, k_proj and v_proj packed along the output features. */
  qkv: Tensor;
  o: Tensor;
  /** Gemma 3: RMSNorm over each q and k head before RoPE. */
  qNorm?: Tensor;
  kNorm?: Tensor;
  /** Gemma 1: the norm before the MLP. Gemma 2/3: the norm of the attention output, before the residual add. */
  postAttentionNorm: Tensor;
  /** Gemma 2/3's sandwich: the norm before the MLP and the one of its output. */
  preFeedforwardNorm?: Tensor;
  postFeedforwardNorm?: Tensor;
  /** gate_proj and up_proj packed, for `linearActMul`. */
  gateUp: Tensor;
  down: Tensor;
  attention: AttentionSpec;
  rope: RopeSpec;
}

/**
 * Gemma, Gemma 2 and Gemma 3 (text): embeddings times sqrt(hidden), (1 + w) RMSNorms, a GELU-gated MLP; Gemma 2/3 add
 * the sandwich norms, the per-layer sliding window and soft-capping (Gemma 2) or q/k norms and two RoPE bases (3).
 */
export class GemmaModel implements Model {
  readonly kvShape: Model['kvShape'];

  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    private readonly settings: GemmaSettings,
    private readonly embedTable: Tensor,
    private readonly layers: GemmaLayer[],
    private readonly finalNorm: Tensor,
    private readonly lmHead: Tensor,
  ) {
    this.kvShape = { numLayers: layers.length, numKvHeads: config.numKvHeads, headDim: config.headDim };
  }

  forward(step: StepContext, kvCache: readonly LayerKvCache[]): Tensor {
    const b = this.backend;
    const eps = this.config.normEps;
    // transformers multiplies by sqrt(hidden) as a tensor of the embeddings' dtype: scale() rounds it alike.
    let residual = b.scale(b.embedding(this.embedTable, step, 'tokens'), Math.sqrt(this.config.hiddenSize));
    // Each norm names the linear its output feeds, whose input form a backend may write beside it (Backend.rmsNorm).
    let x = b.rmsNorm(residual, this.layers[0]!.inputNorm, eps, OFFSET, this.layers[0]!.qkv);
    // The last MLP output and, Gemma 2/3, its sandwich norm: applied by the next addRmsNorm (xNorm), in its launch.
    let mlp: Tensor | null = null;
    let mlpNorm: Tensor | undefined;
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i]!;
      if (mlp) ({ out: x, residual } = b.addRmsNorm(mlp, residual, layer.inputNorm, eps, OFFSET, layer.qkv, mlpNorm));
      const attn = this.attention(x, layer, kvCache[i]!, step);
      // Gemma 2/3: residual += postAttentionNorm(attn), normed by the pre-feedforward norm; Gemma 1: the one norm.
      const sandwich = layer.preFeedforwardNorm;
      ({ out: x, residual } = sandwich
        ? b.addRmsNorm(attn, residual, sandwich, eps, OFFSET, layer.gateUp, layer.postAttentionNorm)
        : b.addRmsNorm(attn, residual, layer.postAttentionNorm, eps, OFFSET, layer.gateUp));
      mlp = b.linear(b.linearActMul(x, layer.gateUp, undefined, this.settings.activation, layer.down), layer.down);
      mlpNorm = layer.postFeedforwardNorm;
    }
    // Gemma 2/3: the last sandwich norm, the add and the final norm in one launch over every row, then the rows asked
    // for (the gather keeps no quantized copy: the LM head quantizes its own); Gemma 1: those rows alone normed.
    const normed = mlpNorm
      ? b.gatherLogitRows(b.addRmsNorm(mlp!, residual, this.finalNorm, eps, OFFSET, undefined, mlpNorm).out, step)
      : b.rmsNorm(b.gatherLogitRows(b.add(mlp!, residual), step), this.finalNorm, eps, OFFSET, this.lmHead);
    const logits = b.linear(normed, this.lmHead);
    const cap = this.settings.finalSoftcap;
    return cap > 0 ? b.softcap(logits, cap) : logits;
  }

  private attention(x: Tensor, layer: GemmaLayer, cache: LayerKvCache, step: StepContext): Tensor {
    const b = this.backend;
    const norm = headNormOf(layer, this.config.normEps, OFFSET);
    const [q] = b.qkvRopeWriteKv(x, layer.qkv, undefined, layer.attention, layer.rope, cache, step, norm);
    return b.linear(b.attention(q, cache, layer.attention, step, layer.o), layer.o);
  }
}

export function buildGemma(generation: GemmaGeneration, cfg: ModelConfig, w: ModelWeights, backend: Backend): Model {
  const settings = gemmaSettings(cfg, generation);
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim: D, vocabSize } = cfg;
  const multimodal = cfg.architecture === 'Gemma3ForConditionalGeneration';
  const { root, lmHead } = decoderRoot(w, multimodal ? 'model.language_model.' : 'model.');
  const sandwich = generation > 1;
  const packed = (names: readonly [name: string, out: number][]) =>
    w.loadPacked(names.map(([name, out]) => ({ name: `${name}.weight`, shape: [out, H] })));
  const layers = Array.from({ length: cfg.numLayers }, (_, i): GemmaLayer => {
    const p = `${root}layers.${i}`;
    const norm = (name: string, size = H) => w.load(`${p}.${name}.weight`, [size]);
    const type = settings.layerTypes[i]!;
    return {
      inputNorm: norm('input_layernorm'),
      qkv: packed([
        [`${p}.self_attn.q_proj`, numHeads * D],
        [`${p}.self_attn.k_proj`, numKvHeads * D],
        [`${p}.self_attn.v_proj`, numKvHeads * D],
      ]),
      o: w.load(`${p}.self_attn.o_proj.weight`, [H, numHeads * D]),
      qNorm: generation === 3 ? norm('self_attn.q_norm', D) : undefined,
      kNorm: generation === 3 ? norm('self_attn.k_norm', D) : undefined,
      postAttentionNorm: norm('post_attention_layernorm'),
      preFeedforwardNorm: sandwich ? norm('pre_feedforward_layernorm') : undefined,
      postFeedforwardNorm: sandwich ? norm('post_feedforward_layernorm') : undefined,
      gateUp: packed([
        [`${p}.mlp.gate_proj`, I],
        [`${p}.mlp.up_proj`, I],
      ]),
      down: w.load(`${p}.mlp.down_proj.weight`, [H, I]),
      attention: {
        numHeads,
        numKvHeads,
        headDim: D,
        scale: settings.queryPreAttnScalar ** -0.5,
        slidingWindow: type === 'sliding_attention' ? cfg.slidingWindow : 0,
        softcap: settings.attnSoftcap,
      },
      rope: settings.rope[type],
    };
  });
  const embed = w.load(`${root}embed_tokens.weight`, [vocabSize, H]);
  const head = w.has(lmHead) || !cfg.tieWordEmbeddings ? w.load(lmHead, [vocabSize, H]) : embed;
  return new GemmaModel(cfg, backend, settings, embed, layers, w.load(`${root}norm.weight`, [H]), head);
}

export const gemma: Architecture = {
  names: ['GemmaForCausalLM'],
  modelTypes: ['gemma'],
  build: (cfg, w, backend) => buildGemma(1, cfg, w, backend),
};

export const gemma2: Architecture = {
  names: ['Gemma2ForCausalLM'],
  modelTypes: ['gemma2'],
  build: (cfg, w, backend) => buildGemma(2, cfg, w, backend),
};

/** Gemma 3's text model, alone or inside the multimodal checkpoint (images are refused at the API). */
export const gemma3: Architecture = {
  names: ['Gemma3ForCausalLM', 'Gemma3ForConditionalGeneration'],
  modelTypes: ['gemma3_text', 'gemma3'],
  kernelShape: { qkNorm: true },
  build: (cfg, w, backend) => buildGemma(3, cfg, w, backend),
};
