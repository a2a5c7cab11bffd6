import type { AttentionSpec, Backend, LayerKvCache, StepContext, Tensor } from '../backend/backend.ts';
import type { RopeSpec } from '../backend/rope-spec.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import type { Architecture } from './architecture.ts';
import { everyNthFull, type LayerType, layerTypesOf, ropesByLayerType, ropeWith } from './layer-types.ts';
import { headNormOf } from './llama.ts';
import type { Model } from './model.ts';
import { ropeSpecFromConfig, withoutRotation } from './rope.ts';
import type { ModelWeights } from './weights.ts';

interface OlmoLayer {
  /** q_proj, k_proj and v_proj packed along the output features. */
  qkv: Tensor;
  o: Tensor;
  /**
   * q and k RMSNormed before RoPE: OLMo across all heads (weights `[Hq*D]` and `[Hk*D]`), EXAONE 4 each head alone
   * (weights `[D]`, through RoPE's `HeadNorm`).
   */
  qNorm: Tensor;
  kNorm: Tensor;
  perHeadNorm: boolean;
  /** The norms of the attention and MLP outputs, before each is added to the residual stream. */
  postAttentionNorm: Tensor;
  postFeedforwardNorm: Tensor;
  /** gate_proj and up_proj packed, for `linearActMul`. */
  gateUp: Tensor;
  down: Tensor;
  attention: AttentionSpec;
  rope: RopeSpec;
}

/**
 * OLMo 2, OLMo 3 and EXAONE 4: no norm before attention or the MLP; each one's output is RMSNormed, then added to the
 * residual stream, which is what the next block reads. q and k are RMSNormed before RoPE (OLMo across all heads,
 * EXAONE 4 per head). OLMo 3 slides a window over three layers of every four, whose RoPE is never scaled; EXAONE 4's
 * hybrid models slide three of every four too, and leave the full layers unrotated.
 */
export class OlmoModel implements Model {
  readonly kvShape: Model['kvShape'];

  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    private readonly embedTable: Tensor,
    private readonly layers: OlmoLayer[],
    private readonly finalNorm: Tensor,
    private readonly lmHead: Tensor,
  ) {
    this.kvShape = { numLayers: layers.length, numKvHeads: config.numKvHeads, headDim: config.headDim };
  }

  forward(step: StepContext, kvCache: readonly LayerKvCache[]): Tensor {
    const b = this.backend;
    const eps = this.config.normEps;
    let residual = b.embedding(this.embedTable, step, 'tokens');
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i]!;
      const attn = this.attention(residual, layer, kvCache[i]!, step);
      residual = b.add(b.rmsNorm(attn, layer.postAttentionNorm, eps), residual);
      const mlp = b.linear(b.linearActMul(residual, layer.gateUp, undefined, 'silu', layer.down), layer.down);
      residual = b.add(b.rmsNorm(mlp, layer.postFeedforwardNorm, eps), residual);
    }
    const last = b.gatherLogitRows(residual, step);
    return b.linear(b.rmsNorm(last, this.finalNorm, eps, 0, this.lmHead), this.lmHead);
  }

  private attention(x: Tensor, layer: OlmoLayer, cache: LayerKvCache, step: StepContext): Tensor {
    const b = this.backend;
    const eps = this.config.normEps;
    if (layer.perHeadNorm) {
      const norm = headNormOf(layer, eps);
      const [q] = b.qkvRopeWriteKv(x, layer.qkv, undefined, layer.attention, layer.rope, cache, step, norm);
      return b.linear(b.attention(q, cache, layer.attention, step, layer.o), layer.o);
    }
    const { numHeads, numKvHeads, headDim } = layer.attention;
    const kvDim = numKvHeads * headDim;
    const [q, k, v] = b.splitColumns(b.linear(x, layer.qkv), [numHeads * headDim, kvDim, kvDim]) as [
      Tensor,
      Tensor,
      Tensor,
    ];
    const qNormed = b.rmsNorm(q, layer.qNorm, eps);
    b.ropeWriteKv(qNormed, b.rmsNorm(k, layer.kNorm, eps), v, layer.rope, cache, step);
    return b.linear(b.attention(qNormed, cache, layer.attention, step, layer.o), layer.o);
  }
}

/** What an OLMo-shaped family's layers differ in: their attention kind and rotary embedding, the q/k norms' scope. */
interface OlmoFamily {
  layerTypes: (cfg: ModelConfig) => LayerType[];
  ropes: (cfg: ModelConfig, types: readonly LayerType[]) => RopeSpec[];
  perHeadNorm: boolean;
}

/** OLMo 2 never slides. */
const OLMO2: OlmoFamily = {
  layerTypes: (cfg) => Array.from({ length: cfg.numLayers }, () => 'full_attention' as const),
  ropes: (cfg) => Array(cfg.numLayers).fill(ropeSpecFromConfig(cfg)),
  perHeadNorm: false,
};

/** OLMo 3's sliding layers are `layer_types`' (transformers' rule without it: three of every four), RoPE unscaled. */
const OLMO3: OlmoFamily = {
  layerTypes: (cfg) => everyNthFull(cfg, 4),
  ropes: (cfg, types) => {
    const ropes = ropesByLayerType(cfg, () => ropeWith(cfg, cfg.ropeTheta, null));
    return types.map((type) => ropes[type]);
  },
  perHeadNorm: false,
};

/**
 * EXAONE 4: without a sliding window (1.2B) every layer is full and rotated; with one (32B), `layer_types`, else
 * `sliding_window_pattern` (every n-th layer full, or a string of L and G repeated, the last layer full), and only
 * the sliding layers rotate, as transformers' Exaone4Attention does.
 */
const EXAONE4: OlmoFamily = {
  layerTypes: (cfg) => {
    const pattern = cfg.raw.sliding_window_pattern;
    // Without a window transformers sets the pattern to 0 whatever the config says: no layer slides.
    if (typeof cfg.raw.sliding_window !== 'number') return layerTypesOf(cfg, () => 'full_attention', 'config.json');
    if (typeof pattern !== 'string' || pattern.length === 0) return everyNthFull(cfg, 4);
    const letter = (i: number): LayerType =>
      i < cfg.numLayers - 1 && pattern[i % pattern.length] === 'L' ? 'sliding_attention' : 'full_attention';
    return layerTypesOf(cfg, letter, 'config.json');
  },
  ropes: (cfg, types) => {
    const rope = ropeSpecFromConfig(cfg);
    const none = withoutRotation(rope);
    const hybrid = typeof cfg.raw.sliding_window === 'number';
    return types.map((type) => (!hybrid || type === 'sliding_attention' ? rope : none));
  },
  perHeadNorm: true,
};

function buildOlmo(family: OlmoFamily, cfg: ModelConfig, w: ModelWeights, backend: Backend): Model {
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim: D, vocabSize } = cfg;
  const types = family.layerTypes(cfg);
  const ropes = family.ropes(cfg, types);
  const packed = (names: readonly [name: string, out: number][]) =>
    w.loadPacked(names.map(([name, out]) => ({ name: `${name}.weight`, shape: [out, H] })));
  const layers = Array.from({ length: cfg.numLayers }, (_, i): OlmoLayer => {
    const p = `model.layers.${i}`;
    const norm = (name: string, size = H) => w.load(`${p}.${name}.weight`, [size]);
    const type = types[i]!;
    return {
      qkv: packed([
        [`${p}.self_attn.q_proj`, numHeads * D],
        [`${p}.self_attn.k_proj`, numKvHeads * D],
        [`${p}.self_attn.v_proj`, numKvHeads * D],
      ]),
      o: w.load(`${p}.self_attn.o_proj.weight`, [H, numHeads * D]),
      qNorm: norm('self_attn.q_norm', family.perHeadNorm ? D : numHeads * D),
      kNorm: norm('self_attn.k_norm', family.perHeadNorm ? D : numKvHeads * D),
      perHeadNorm: family.perHeadNorm,
      postAttentionNorm: norm('post_attention_layernorm'),
      postFeedforwardNorm: norm('post_feedforward_layernorm'),
      gateUp: packed([
        [`${p}.mlp.gate_proj`, I],
        [`${p}.mlp.up_proj`, I],
      ]),
      down: w.load(`${p}.mlp.down_proj.weight`, [H, I]),
      attention: {
        numHeads,
        numKvHeads,
        headDim: D,
        scale: 1 / Math.sqrt(D),
        slidingWindow: type === 'sliding_attention' ? cfg.slidingWindow : 0,
      },
      rope: ropes[i]!,
    };
  });
  const embed = w.load('model.embed_tokens.weight', [vocabSize, H]);
  const head = w.has('lm_head.weight') || !cfg.tieWordEmbeddings ? w.load('lm_head.weight', [vocabSize, H]) : embed;
  return new OlmoModel(cfg, backend, embed, layers, w.load('model.norm.weight', [H]), head);
}

export const olmo2: Architecture = {
  names: ['Olmo2ForCausalLM'],
  modelTypes: ['olmo2'],
  kernelShape: { qkNorm: true },
  build: (cfg, w, backend) => buildOlmo(OLMO2, cfg, w, backend),
};

export const olmo3: Architecture = {
  names: ['Olmo3ForCausalLM'],
  modelTypes: ['olmo3'],
  kernelShape: { qkNorm: true },
  build: (cfg, w, backend) => buildOlmo(OLMO3, cfg, w, backend),
};

export const exaone4: Architecture = {
  names: ['Exaone4ForCausalLM'],
  modelTypes: ['exaone4'],
  kernelShape: { qkNorm: true },
  build: (cfg, w, backend) => buildOlmo(EXAONE4, cfg, w, backend),
};
