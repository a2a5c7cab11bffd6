import type { Activation, AttentionSpec, Backend, LayerKvCache, StepContext, Tensor } from '../backend/backend.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import { UserError } from '../util/errors.ts';
import { plainActivation } from './activation.ts';
import type { Architecture } from './architecture.ts';
import { cachedAttention } from './kv-compression.ts';
import type { Model } from './model.ts';
import type { ModelWeights } from './weights.ts';

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

/**
 * GPT-2 and GPTBigCode: learned positions, pre-LayerNorm blocks, biased projections, a GELU MLP; GPT-2's attention is
 * multi-head, GPTBigCode's multi-query (one K/V head). The LM head is the token embeddings unless the checkpoint has
 * its own.
 */
export class Gpt2Model implements Model {
  readonly compactsKv = true;
  readonly kvShape: Model['kvShape'];
  private readonly spec: AttentionSpec;

  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    private readonly act: Activation,
    private readonly wte: Tensor,
    private readonly wpe: Tensor,
    private readonly layers: Gpt2Layer[],
    private readonly lnF: Linear,
    private readonly lmHead: Tensor,
  ) {
    const { numHeads, numKvHeads, headDim } = config;
    this.kvShape = { numLayers: layers.length, numKvHeads, headDim };
    this.spec = { numHeads, numKvHeads, headDim, scale: 1 / Math.sqrt(headDim), slidingWindow: 0 };
  }

  forward(step: StepContext, kvCache: readonly LayerKvCache[]): Tensor {
    const b = this.backend;
    const eps = this.config.normEps;
    let h = b.add(b.embedding(this.wte, step, 'tokens'), b.embedding(this.wpe, step, 'positions'));
    const { hiddenSize: H, numKvHeads, headDim } = this.config;
    const kvDim = numKvHeads * headDim;
    this.layers.forEach((l, i) => {
      const x = b.layerNorm(h, l.ln1.weight, l.ln1.bias, eps);
      const qkv = b.linear(x, l.qkv.weight, l.qkv.bias);
      const [q, k, v] = b.splitColumns(qkv, [H, kvDim, kvDim]) as [Tensor, Tensor, Tensor];
      b.writeKv(k, v, kvCache[i]!, step);
      h = b.add(h, b.linear(cachedAttention(b, q, kvCache[i]!, this.spec, step), l.proj.weight, l.proj.bias));
      const y = b.layerNorm(h, l.ln2.weight, l.ln2.bias, eps);
      const mlp = b.linear(b.activation(b.linear(y, l.fc.weight, l.fc.bias), this.act), l.out.weight, l.out.bias);
      h = b.add(h, mlp);
    });
    const last = b.gatherLogitRows(h, step);
    return b.linear(b.layerNorm(last, this.lnF.weight, this.lnF.bias, eps), this.lmHead);
  }
}

/** Where GPT-2 and GPTBigCode store their weights differently. */
interface Gpt2Layout {
  /** GPT-2's Conv1D stores weights `[in, out]` (transposed as they load); GPTBigCode's Linear `[out, in]`. */
  conv1d: boolean;
}

function buildGpt2(layout: Gpt2Layout, cfg: ModelConfig, w: ModelWeights, backend: Backend): Gpt2Model {
  const { hiddenSize: H, intermediateSize: I, vocabSize, numKvHeads, headDim: D } = cfg;
  const act = plainActivation(
    String(cfg.raw.activation_function ?? 'gelu_new'),
    'activation_function',
    cfg.architecture,
  );
  if (cfg.raw.scale_attn_by_inverse_layer_idx === true) {
    throw new UserError(`config.json: scale_attn_by_inverse_layer_idx = true is not supported for ${cfg.architecture}`);
  }
  // GPTBigCode without multi-query interleaves each head's q, k and v in c_attn (no released StarCoder does).
  if (!layout.conv1d && cfg.raw.multi_query === false) {
    throw new UserError('config.json: multi_query = false is not supported for GPTBigCodeForCausalLM');
  }
  // Checkpoints saved from GPT2LMHeadModel prefix names with "transformer."; the original gpt2 upload does not.
  const root = w.has('wte.weight') && !w.has('transformer.wte.weight') ? '' : 'transformer.';
  const norm = (name: string): Linear => ({ weight: w.load(`${name}.weight`, [H]), bias: w.load(`${name}.bias`, [H]) });
  const linear = (name: string, inp: number, out: number): Linear => ({
    weight: layout.conv1d
      ? w.load(`${name}.weight`, [inp, out], { transpose: true })
      : w.load(`${name}.weight`, [out, inp]),
    bias: w.load(`${name}.bias`, [out]),
  });
  const layers = Array.from({ length: cfg.numLayers }, (_, i): Gpt2Layer => {
    const p = `${root}h.${i}`;
    return {
      ln1: norm(`${p}.ln_1`),
      qkv: linear(`${p}.attn.c_attn`, H, H + 2 * numKvHeads * D),
      proj: linear(`${p}.attn.c_proj`, H, H),
      ln2: norm(`${p}.ln_2`),
      fc: linear(`${p}.mlp.c_fc`, H, I),
      out: linear(`${p}.mlp.c_proj`, I, H),
    };
  });
  const wte = w.load(`${root}wte.weight`, [vocabSize, H]);
  // GPT-2 always ties (its converted GGUFs carry a copy pagoda does not load); GPTBigCode unless the config says not.
  const untied = !layout.conv1d && (w.has('lm_head.weight') || !cfg.tieWordEmbeddings);
  return new Gpt2Model(
    cfg,
    backend,
    act,
    wte,
    w.load(`${root}wpe.weight`, [cfg.maxPositionEmbeddings, H]),
    layers,
    norm(`${root}ln_f`),
    untied ? w.load('lm_head.weight', [vocabSize, H]) : wte,
  );
}

export const gpt2: Architecture = {
  names: ['GPT2LMHeadModel'],
  modelTypes: ['gpt2'],
  kernelShape: { layerNorm: true, learnedPositions: true, plainMlp: true },
  build: (cfg, w, backend) => buildGpt2({ conv1d: true }, cfg, w, backend),
};

/** GPTBigCode: StarCoder (1), SantaCoder, Granite Code 20B and 34B, SQLCoder, WizardCoder 15B. */
export const gptBigCode: Architecture = {
  names: ['GPTBigCodeForCausalLM'],
  modelTypes: ['gpt_bigcode'],
  kernelShape: { layerNorm: true, learnedPositions: true, plainMlp: true },
  build: (cfg, w, backend) => buildGpt2({ conv1d: false }, cfg, w, backend),
};
