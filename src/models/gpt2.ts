import type { AttentionSpec, Backend, LayerKvCache, StepContext, Tensor } from '../backend/backend.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import { UserError } from '../util/errors.ts';
import type { Architecture } from './architecture.ts';
import { cachedAttention } from './kv-compression.ts';
import type { Model } from './model.ts';
import type { ModelWeights } from './weights.ts';

/** GPT-2's activation names and the GELU each means. */
const GELU: Record<string, 'tanh' | 'none'> = { gelu_new: 'tanh', gelu_pytorch_tanh: 'tanh', gelu: 'none' };

interface Linear {
  weight: Tensor;
  bias: Tensor;
}

interface Gpt2Layer {
  ln1: Linear;
  /** c_attn: q, k and v packed along the output features. */
  qkv: Linear;
  proj: Linear;
  ln2: Linear;
  fc: Linear;
  out: Linear;
}

/** GPT-2: learned positions, pre-LayerNorm blocks, multi-head attention, gelu_new MLP, tied embeddings. */
export class Gpt2Model implements Model {
  readonly compactsKv = true;
  readonly kvShape: Model['kvShape'];
  private readonly spec: AttentionSpec;

  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    private readonly geluKind: 'tanh' | 'none',
    private readonly wte: Tensor,
    private readonly wpe: Tensor,
    private readonly layers: Gpt2Layer[],
    private readonly lnF: Linear,
  ) {
    const { numHeads, headDim } = config;
    this.kvShape = { numLayers: layers.length, numKvHeads: numHeads, headDim };
    this.spec = { numHeads, numKvHeads: numHeads, headDim, scale: 1 / Math.sqrt(headDim), slidingWindow: 0 };
  }

  forward(step: StepContext, kvCache: readonly LayerKvCache[]): Tensor {
    const b = this.backend;
    const eps = this.config.normEps;
    let h = b.add(b.embedding(this.wte, step, 'tokens'), b.embedding(this.wpe, step, 'positions'));
    const H = this.config.hiddenSize;
    this.layers.forEach((l, i) => {
      const x = b.layerNorm(h, l.ln1.weight, l.ln1.bias, eps);
      const [q, k, v] = b.splitColumns(b.linear(x, l.qkv.weight, l.qkv.bias), [H, H, H]) as [Tensor, Tensor, Tensor];
      b.writeKv(k, v, kvCache[i]!, step);
      h = b.add(h, b.linear(cachedAttention(b, q, kvCache[i]!, this.spec, step), l.proj.weight, l.proj.bias));
      const y = b.layerNorm(h, l.ln2.weight, l.ln2.bias, eps);
      const mlp = b.linear(b.gelu(b.linear(y, l.fc.weight, l.fc.bias), this.geluKind), l.out.weight, l.out.bias);
      h = b.add(h, mlp);
    });
    const last = b.gatherLogitRows(h, step);
    return b.linear(b.layerNorm(last, this.lnF.weight, this.lnF.bias, eps), this.wte);
  }
}

function buildGpt2(cfg: ModelConfig, w: ModelWeights, backend: Backend): Gpt2Model {
  const { hiddenSize: H, intermediateSize: I, vocabSize } = cfg;
  const gelu = GELU[String(cfg.raw.activation_function ?? 'gelu_new')];
  if (!gelu) {
    throw new UserError(
      `config.json: activation_function "${cfg.raw.activation_function}" is not supported (expected one of ${Object.keys(GELU).join(', ')})`,
    );
  }
  if (cfg.raw.scale_attn_by_inverse_layer_idx === true) {
    throw new UserError('config.json: scale_attn_by_inverse_layer_idx = true is not supported for GPT-2');
  }
  // Checkpoints saved from GPT2LMHeadModel prefix names with "transformer."; the original gpt2 upload does not.
  const root = w.has('wte.weight') && !w.has('transformer.wte.weight') ? '' : 'transformer.';
  const norm = (name: string): Linear => ({ weight: w.load(`${name}.weight`, [H]), bias: w.load(`${name}.bias`, [H]) });
  // Conv1D stores weights as [in, out]: transpose them to the [out, in] layout linear() takes.
  const conv = (name: string, inp: number, out: number): Linear => ({
    weight: w.load(`${name}.weight`, [inp, out], { transpose: true }),
    bias: w.load(`${name}.bias`, [out]),
  });
  const layers = Array.from({ length: cfg.numLayers }, (_, i): Gpt2Layer => {
    const p = `${root}h.${i}`;
    return {
      ln1: norm(`${p}.ln_1`),
      qkv: conv(`${p}.attn.c_attn`, H, 3 * H),
      proj: conv(`${p}.attn.c_proj`, H, H),
      ln2: norm(`${p}.ln_2`),
      fc: conv(`${p}.mlp.c_fc`, H, I),
      out: conv(`${p}.mlp.c_proj`, I, H),
    };
  });
  return new Gpt2Model(
    cfg,
    backend,
    gelu,
    w.load(`${root}wte.weight`, [vocabSize, H]),
    w.load(`${root}wpe.weight`, [cfg.maxPositionEmbeddings, H]),
    layers,
    norm(`${root}ln_f`),
  );
}

export const gpt2: Architecture = { names: ['GPT2LMHeadModel'], modelTypes: ['gpt2'], build: buildGpt2 };
