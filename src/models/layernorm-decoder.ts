import type { AttentionSpec, Backend, LayerKvCache, StepContext, Tensor } from '../backend/backend.ts';
import type { RopeSpec } from '../backend/rope-spec.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import { UserError } from '../util/errors.ts';
import type { Architecture } from './architecture.ts';
import { cachedAttention } from './kv-compression.ts';
import type { Model } from './model.ts';
import { ropeSpecFromConfig } from './rope.ts';
import type { ModelWeights } from './weights.ts';

interface Affine {
  weight: Tensor;
  bias?: Tensor;
}

interface LayerNormDecoderLayer {
  inputNorm: Required<Affine>;
  /** The MLP's own norm; absent when attention and MLP read the same normed input in parallel (Phi-2). */
  mlpNorm?: Required<Affine>;
  /** q_proj, k_proj and v_proj packed along the output features, biases alike. */
  qkv: Affine;
  o: Affine;
  up: Affine;
  down: Affine;
  attention: AttentionSpec;
}

/**
 * Decoders of LayerNorms (weight and bias), biased projections, RoPE and a plain GELU MLP: StarCoder2 runs attention,
 * then the MLP, each after its own norm; Phi-2 runs both on the one normed input and adds both to the residual stream.
 */
export class LayerNormDecoder implements Model {
  readonly compactsKv = true;
  readonly kvShape: Model['kvShape'];

  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    private readonly rope: RopeSpec,
    private readonly gelu: 'tanh' | 'none',
    private readonly embedTable: Tensor,
    private readonly layers: LayerNormDecoderLayer[],
    private readonly finalNorm: Required<Affine>,
    private readonly lmHead: Affine,
  ) {
    this.kvShape = { numLayers: layers.length, numKvHeads: config.numKvHeads, headDim: config.headDim };
  }

  forward(step: StepContext, kvCache: readonly LayerKvCache[]): Tensor {
    const b = this.backend;
    const eps = this.config.normEps;
    const norm = (x: Tensor, n: Required<Affine>) => b.layerNorm(x, n.weight, n.bias, eps);
    let h = b.embedding(this.embedTable, step, 'tokens');
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i]!;
      const x = norm(h, layer.inputNorm);
      const [q] = b.qkvRopeWriteKv(x, layer.qkv.weight, layer.qkv.bias, layer.attention, this.rope, kvCache[i]!, step);
      const attn = linear(b, cachedAttention(b, q, kvCache[i]!, layer.attention, step, layer.o.weight), layer.o);
      h = b.add(h, attn);
      h = b.add(h, this.mlp(layer.mlpNorm ? norm(h, layer.mlpNorm) : x, layer));
    }
    return linear(b, norm(b.gatherLogitRows(h, step), this.finalNorm), this.lmHead);
  }

  private mlp(x: Tensor, layer: LayerNormDecoderLayer): Tensor {
    const b = this.backend;
    return linear(b, b.gelu(linear(b, x, layer.up), this.gelu), layer.down);
  }
}

function linear(b: Backend, x: Tensor, l: Affine): Tensor {
  return b.linear(x, l.weight, l.bias);
}

/** The GELU each `hidden_act` names. */
const GELU: Record<string, 'tanh' | 'none'> = {
  gelu_new: 'tanh',
  gelu_pytorch_tanh: 'tanh',
  gelu_fast: 'tanh',
  gelu: 'none',
};

/** How a member names its tensors, and whether its MLP reads its own norm. */
interface Layout {
  parallel: boolean;
  /** The attention output projection, the MLP's two projections, the final norm. */
  o: string;
  up: string;
  down: string;
  finalNorm: string;
  /** Biases on the projections: always, or as the config's `use_bias` says (StarCoder2). */
  biased: (cfg: ModelConfig) => boolean;
}

const STARCODER2: Layout = {
  parallel: false,
  o: 'self_attn.o_proj',
  up: 'mlp.c_fc',
  down: 'mlp.c_proj',
  finalNorm: 'model.norm',
  biased: (cfg) => cfg.raw.use_bias !== false,
};

const PHI: Layout = {
  parallel: true,
  o: 'self_attn.dense',
  up: 'mlp.fc1',
  down: 'mlp.fc2',
  finalNorm: 'model.final_layernorm',
  biased: () => true,
};

function buildLayerNormDecoder(layout: Layout, cfg: ModelConfig, w: ModelWeights, backend: Backend): Model {
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim: D, vocabSize } = cfg;
  const gelu = GELU[cfg.hiddenAct];
  if (!gelu) {
    throw new UserError(
      `config.json: hidden_act "${cfg.hiddenAct}" is not supported for ${cfg.architecture} (expected one of ${Object.keys(GELU).join(', ')})`,
    );
  }
  if (cfg.raw.qk_layernorm === true) throw new UserError('config.json: qk_layernorm = true is not supported');
  const biased = layout.biased(cfg);
  const lin = (name: string, out: number, inp: number): Affine => ({
    weight: w.load(`${name}.weight`, [out, inp]),
    bias: biased ? w.load(`${name}.bias`, [out]) : undefined,
  });
  const norm = (name: string): Required<Affine> => ({
    weight: w.load(`${name}.weight`, [H]),
    bias: w.load(`${name}.bias`, [H]),
  });
  const layers = Array.from({ length: cfg.numLayers }, (_, i): LayerNormDecoderLayer => {
    const p = `model.layers.${i}`;
    const rows = (j: number) => (j === 0 ? numHeads : numKvHeads) * D;
    // Phi-2 files converted from its first checkpoints keep q/k/v fused.
    const fused = `${p}.self_attn.qkv_proj`;
    const qkv = (suffix: 'weight' | 'bias') =>
      w.has(`${fused}.${suffix}`)
        ? w.load(`${fused}.${suffix}`, suffix === 'weight' ? [rows(0) + 2 * rows(1), H] : [rows(0) + 2 * rows(1)])
        : w.loadPacked(
            ['q_proj', 'k_proj', 'v_proj'].map((name, j) => ({
              name: `${p}.self_attn.${name}.${suffix}`,
              shape: suffix === 'weight' ? [rows(j), H] : [rows(j)],
            })),
          );
    return {
      inputNorm: norm(`${p}.input_layernorm`),
      mlpNorm: layout.parallel ? undefined : norm(`${p}.post_attention_layernorm`),
      qkv: { weight: qkv('weight'), bias: biased ? qkv('bias') : undefined },
      o: lin(`${p}.${layout.o}`, H, numHeads * D),
      up: lin(`${p}.${layout.up}`, I, H),
      down: lin(`${p}.${layout.down}`, H, I),
      attention: {
        numHeads,
        numKvHeads,
        headDim: D,
        scale: 1 / Math.sqrt(D),
        slidingWindow: cfg.slidingWindow,
      },
    };
  });
  const embed = w.load('model.embed_tokens.weight', [vocabSize, H]);
  const tied = !w.has('lm_head.weight') && cfg.tieWordEmbeddings;
  const lmHead: Affine = tied
    ? { weight: embed }
    : {
        weight: w.load('lm_head.weight', [vocabSize, H]),
        bias: w.has('lm_head.bias') ? w.load('lm_head.bias', [vocabSize]) : undefined,
      };
  return new LayerNormDecoder(
    cfg,
    backend,
    ropeSpecFromConfig(cfg),
    gelu,
    embed,
    layers,
    norm(layout.finalNorm),
    lmHead,
  );
}

/** StarCoder2: LayerNorms, biased projections, GQA, RoPE, a GELU MLP, a sliding window; tied embeddings. */
export const starcoder2: Architecture = {
  names: ['Starcoder2ForCausalLM'],
  modelTypes: ['starcoder2'],
  build: (cfg, w, backend) => buildLayerNormDecoder(STARCODER2, cfg, w, backend),
};

/** Phi-1, Phi-1.5 and Phi-2: parallel attention and MLP on one LayerNorm, partial RoPE, a biased LM head. */
export const phi: Architecture = {
  names: ['PhiForCausalLM'],
  modelTypes: ['phi'],
  build: (cfg, w, backend) => buildLayerNormDecoder(PHI, cfg, w, backend),
};
