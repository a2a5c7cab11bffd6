import type {
  Activation,
  AttentionSpec,
  Backend,
  HostTensor,
  LayerKvCache,
  StepContext,
  Tensor,
} from '../backend/backend.ts';
import type { RopeSpec } from '../backend/rope-spec.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import { toFloat32 } from '../primitives/host-tensor.ts';
import { UserError } from '../util/errors.ts';
import { plainActivation } from './activation.ts';
import type { Architecture } from './architecture.ts';
import { cachedAttention } from './kv-compression.ts';
import { everyNthFull, type LayerType } from './layer-types.ts';
import type { Model } from './model.ts';
import { ropeSpecFromConfig, withoutRotation } from './rope.ts';
import type { ModelWeights } from './weights.ts';

interface Affine {
  weight: Tensor;
  bias?: Tensor;
}

/** A LayerNorm's weight and bias (zeros where the family's norms have none, as Cohere's). */
type Norm = Required<Affine>;

interface LayerNormDecoderLayer {
  inputNorm: Norm;
  /** The MLP's own norm; absent when attention and MLP read the same normed input in parallel (Phi-2). */
  mlpNorm?: Norm;
  /** q_proj, k_proj and v_proj packed along the output features, biases alike. */
  qkv: Affine;
  o: Affine;
  /** The MLP's first projection: GELU's input, or (gated) gate_proj and up_proj packed for `linearActMul`. */
  up: Affine;
  down: Affine;
  attention: AttentionSpec;
  /** The model's rotary embedding, or none (withoutRotation) in Command R7B's full-attention layers. */
  rope: RopeSpec;
}

/**
 * Decoders of LayerNorms, RoPE and a plain (GELU, ReLU²) or SwiGLU MLP: StarCoder2, StableLM and Nemotron run
 * attention, then the MLP, each after its own norm; Phi-2 and Command-R run both on the one normed input and add both
 * to the residual stream. Command-R's logits are scaled; Command R7B's layers each carry their window and RoPE (its full layers none).
 */
export class LayerNormDecoder implements Model {
  readonly compactsKv = true;
  readonly kvShape: Model['kvShape'];

  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    /** The plain MLP's activation, or 'swiglu' for a gated one. */
    private readonly activation: Activation | 'swiglu',
    private readonly logitScale: number,
    private readonly embedTable: Tensor,
    private readonly layers: LayerNormDecoderLayer[],
    private readonly finalNorm: Norm,
    private readonly lmHead: Affine,
  ) {
    this.kvShape = { numLayers: layers.length, numKvHeads: config.numKvHeads, headDim: config.headDim };
  }

  forward(step: StepContext, kvCache: readonly LayerKvCache[]): Tensor {
    const b = this.backend;
    const eps = this.config.normEps;
    const norm = (x: Tensor, n: Norm) => b.layerNorm(x, n.weight, n.bias, eps);
    let h = b.embedding(this.embedTable, step, 'tokens');
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i]!;
      const x = norm(h, layer.inputNorm);
      const [q] = b.qkvRopeWriteKv(x, layer.qkv.weight, layer.qkv.bias, layer.attention, layer.rope, kvCache[i]!, step);
      const attn = linear(b, cachedAttention(b, q, kvCache[i]!, layer.attention, step, layer.o.weight), layer.o);
      h = b.add(h, attn);
      h = b.add(h, this.mlp(layer.mlpNorm ? norm(h, layer.mlpNorm) : x, layer));
    }
    const logits = linear(b, norm(b.gatherLogitRows(h, step), this.finalNorm), this.lmHead);
    return this.logitScale === 1 ? logits : b.scale(logits, this.logitScale, 'float');
  }

  private mlp(x: Tensor, layer: LayerNormDecoderLayer): Tensor {
    const b = this.backend;
    const { up, down } = layer;
    const act =
      this.activation === 'swiglu'
        ? b.linearActMul(x, up.weight, up.bias, 'silu', down.weight)
        : b.activation(linear(b, x, up), this.activation);
    return linear(b, act, down);
  }
}

function linear(b: Backend, x: Tensor, l: Affine): Tensor {
  return b.linear(x, l.weight, l.bias);
}

/** How a member names its tensors and where it differs from the others. */
interface Layout {
  /** Attention and MLP read the one normed input (Phi, Command-R); else the MLP has its own norm. */
  parallel: boolean;
  /** A gated SiLU MLP (gate_proj, up_proj, down_proj) rather than a plain GELU one. */
  gated: boolean;
  /** The attention output projection, the plain MLP's two projections, the final norm. */
  o: string;
  up: string;
  down: string;
  finalNorm: string;
  /** Biases on the projections: always, or as the config says (StarCoder2's `use_bias`, Cohere's `attention_bias`). */
  biased: (cfg: ModelConfig) => boolean;
  /** Biases on q/k/v alone, as the config says (StableLM's `use_qkv_bias`); `biased` decides where absent. */
  qkvBiased?: (cfg: ModelConfig) => boolean;
  /** Biases on the MLP's projections, as the config says (Nemotron's `mlp_bias`); `biased` decides where absent. */
  mlpBiased?: (cfg: ModelConfig) => boolean;
  /** Added to every LayerNorm weight as it loads: Nemotron's "layernorm1p" normalises with 1 + w. */
  normWeightOffset?: number;
  /** LayerNorms with a bias, or weight only (Cohere). */
  normBias: boolean;
  rope: RopeSpec['style'];
  /**
   * Each layer's attention (Command R7B: three sliding layers of every four, rotated, then one full layer without a
   * rotary embedding); where absent every layer rotates and takes the config's window, if any.
   */
  layerTypes?: (cfg: ModelConfig) => LayerType[];
}

const STARCODER2: Layout = {
  parallel: false,
  gated: false,
  o: 'self_attn.o_proj',
  up: 'mlp.c_fc',
  down: 'mlp.c_proj',
  finalNorm: 'model.norm',
  biased: (cfg) => cfg.raw.use_bias !== false,
  normBias: true,
  rope: 'neox',
};

const PHI: Layout = {
  parallel: true,
  gated: false,
  o: 'self_attn.dense',
  up: 'mlp.fc1',
  down: 'mlp.fc2',
  finalNorm: 'model.final_layernorm',
  biased: () => true,
  normBias: true,
  rope: 'neox',
};

/** Command-R: GPT-J-style RoPE (adjacent pairs), weight-only LayerNorms; its logits scaled by `logit_scale`. */
const COHERE: Layout = {
  parallel: true,
  gated: true,
  o: 'self_attn.o_proj',
  up: 'mlp.up_proj',
  down: 'mlp.down_proj',
  finalNorm: 'model.norm',
  biased: (cfg) => cfg.attentionBias,
  normBias: false,
  rope: 'gptj',
};

/** Command R7B: Command-R's layout with sliding layers (transformers' default: three of every four) and NoPE full ones. */
const COHERE2: Layout = {
  ...COHERE,
  layerTypes: (cfg) => everyNthFull(cfg, 4),
};

/**
 * StableLM (StableLM 2 1.6B, Stable Code 3B, StableLM-3B-4E1T): StarCoder2's order with a SwiGLU MLP, part of each
 * head rotated, q/k/v biased as `use_qkv_bias` says.
 */
const STABLELM: Layout = {
  parallel: false,
  gated: true,
  o: 'self_attn.o_proj',
  up: 'mlp.up_proj',
  down: 'mlp.down_proj',
  finalNorm: 'model.norm',
  biased: () => false,
  qkvBiased: (cfg) => cfg.raw.use_qkv_bias === true,
  normBias: true,
  rope: 'neox',
};

/**
 * Nemotron (Nemotron-Mini-4B, Minitron): StarCoder2's order, LayerNorms of weight 1 + w, partial RoPE, a ReLU² MLP.
 */
const NEMOTRON: Layout = {
  parallel: false,
  gated: false,
  o: 'self_attn.o_proj',
  up: 'mlp.up_proj',
  down: 'mlp.down_proj',
  finalNorm: 'model.norm',
  biased: (cfg) => cfg.attentionBias,
  mlpBiased: (cfg) => cfg.raw.mlp_bias === true,
  normBias: true,
  normWeightOffset: 1,
  rope: 'neox',
};

/** A LayerNorm's bias where the family's norms have none. */
function zeroVector(n: number): HostTensor {
  return { name: 'zero LayerNorm bias', shape: [n], dtype: 'f32', bytes: new Uint8Array(4 * n) };
}

/** A norm weight plus `offset`, in float32 (transformers adds it in the weight's dtype: the same in float32). */
function plus(t: HostTensor, offset: number): HostTensor {
  const values = toFloat32(t).map((v) => v + offset);
  return { name: t.name, shape: t.shape, dtype: 'f32', bytes: new Uint8Array(values.buffer) };
}

function buildLayerNormDecoder(layout: Layout, cfg: ModelConfig, w: ModelWeights, backend: Backend): Model {
  const { hiddenSize: H, intermediateSize: I, numHeads, numKvHeads, headDim: D, vocabSize } = cfg;
  if (layout.gated && cfg.hiddenAct !== 'silu') {
    throw new UserError(
      `config.json: hidden_act "${cfg.hiddenAct}" is not supported for ${cfg.architecture} (expected silu)`,
    );
  }
  const activation = layout.gated ? 'swiglu' : plainActivation(cfg.hiddenAct, 'hidden_act', cfg.architecture);
  // Per-head q/k LayerNorms (Command R+, StableLM 2 12B) and StableLM 2 12B's parallel residual.
  const unsupported = ['qk_layernorm', 'use_qk_norm', ...(layout.parallel ? [] : ['use_parallel_residual'])];
  for (const key of unsupported) {
    if (cfg.raw[key] === true)
      throw new UserError(`config.json: ${key} = true is not supported for ${cfg.architecture}`);
  }
  const biased = layout.biased(cfg);
  const qkvBiased = layout.qkvBiased?.(cfg) ?? biased;
  const mlpBiased = layout.mlpBiased?.(cfg) ?? biased;
  const lin = (name: string, out: number, inp: number, withBias = biased): Affine => ({
    weight: w.load(`${name}.weight`, [out, inp]),
    bias: withBias ? w.load(`${name}.bias`, [out]) : undefined,
  });
  const offset = layout.normWeightOffset ?? 0;
  const zeros = layout.normBias ? undefined : backend.loadWeight(zeroVector(H));
  const norm = (name: string): Norm => ({
    weight: offset ? backend.loadWeight(plus(w.host(`${name}.weight`, [H]), offset)) : w.load(`${name}.weight`, [H]),
    bias: zeros ?? w.load(`${name}.bias`, [H]),
  });
  const rope = ropeSpecFromConfig(cfg, layout.rope);
  const noRope = withoutRotation(rope);
  const types = layout.layerTypes?.(cfg);
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
      qkv: { weight: qkv('weight'), bias: qkvBiased ? qkv('bias') : undefined },
      o: lin(`${p}.${layout.o}`, H, numHeads * D),
      up: layout.gated
        ? {
            weight: w.loadPacked([
              { name: `${p}.mlp.gate_proj.weight`, shape: [I, H] },
              { name: `${p}.mlp.up_proj.weight`, shape: [I, H] },
            ]),
          }
        : lin(`${p}.${layout.up}`, I, H, mlpBiased),
      down: layout.gated
        ? { weight: w.load(`${p}.${layout.down}.weight`, [H, I]) }
        : lin(`${p}.${layout.down}`, H, I, mlpBiased),
      attention: {
        numHeads,
        numKvHeads,
        headDim: D,
        scale: 1 / Math.sqrt(D),
        slidingWindow: types?.[i] === 'full_attention' ? 0 : cfg.slidingWindow,
      },
      rope: types?.[i] === 'full_attention' ? noRope : rope,
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
    activation,
    // Cohere's factor on the logits (its config class supplies the default); 1 for the others.
    typeof cfg.raw.logit_scale === 'number' ? cfg.raw.logit_scale : 1,
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
  kernelShape: { layerNorm: true, plainMlp: true },
  build: (cfg, w, backend) => buildLayerNormDecoder(STARCODER2, cfg, w, backend),
};

/** Phi-1, Phi-1.5 and Phi-2: parallel attention and MLP on one LayerNorm, partial RoPE, a biased LM head. */
export const phi: Architecture = {
  names: ['PhiForCausalLM'],
  modelTypes: ['phi'],
  kernelShape: { layerNorm: true, plainMlp: true },
  build: (cfg, w, backend) => buildLayerNormDecoder(PHI, cfg, w, backend),
};

/** Nemotron: LayerNorms of weight 1 + w, partial RoPE, a ReLU² MLP. */
export const nemotron: Architecture = {
  names: ['NemotronForCausalLM'],
  modelTypes: ['nemotron'],
  kernelShape: { layerNorm: true, plainMlp: true },
  build: (cfg, w, backend) => buildLayerNormDecoder(NEMOTRON, cfg, w, backend),
};

/** StableLM: LayerNorms with biases, partial RoPE, a SwiGLU MLP. */
export const stablelm: Architecture = {
  names: ['StableLmForCausalLM'],
  modelTypes: ['stablelm'],
  kernelShape: { layerNorm: true },
  build: (cfg, w, backend) => buildLayerNormDecoder(STABLELM, cfg, w, backend),
};

/** Cohere's Command-R (v01 and 08-2024): parallel attention and SwiGLU MLP on one weight-only LayerNorm. */
export const cohere: Architecture = {
  names: ['CohereForCausalLM'],
  modelTypes: ['cohere'],
  kernelShape: { layerNorm: true },
  build: (cfg, w, backend) => buildLayerNormDecoder(COHERE, cfg, w, backend),
};

/** Cohere's Command R7B: Command-R with interleaved sliding-window (rotated) and full (unrotated) attention layers. */
export const cohere2: Architecture = {
  names: ['Cohere2ForCausalLM'],
  modelTypes: ['cohere2'],
  kernelShape: { layerNorm: true },
  build: (cfg, w, backend) => buildLayerNormDecoder(COHERE2, cfg, w, backend),
};
