import type { AttentionSpec, Backend, HostTensor, StepContext, Tensor } from '../backend/backend.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import { UserError } from '../util/errors.ts';
import type { Encoder } from './model.ts';
import type { ModelWeights } from './weights.ts';

/** BERT's activation names and the GELU each means. */
const GELU: Record<string, 'tanh' | 'none'> = { gelu: 'none', gelu_new: 'tanh', gelu_pytorch_tanh: 'tanh' };

interface Linear {
  weight: Tensor;
  bias: Tensor;
}

interface BertLayer {
  /** query, key and value packed along the output features. */
  qkv: Linear;
  attnOut: Linear;
  attnNorm: Linear;
  up: Linear;
  down: Linear;
  outNorm: Linear;
}

/**
 * BERT and XLM-RoBERTa encoders: word + position + token-type embeddings, LayerNorm, then post-norm layers of
 * bidirectional attention and a GELU MLP. Every sequence runs whole in one step with no KV cache.
 */
export class BertEncoder implements Encoder {
  private readonly spec: AttentionSpec;

  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    readonly maxPositions: number,
    private readonly geluKind: 'tanh' | 'none',
    private readonly word: Tensor,
    private readonly position: Tensor,
    private readonly tokenType: Tensor,
    private readonly embedNorm: Linear,
    private readonly layers: BertLayer[],
  ) {
    const { numHeads, headDim } = config;
    const scale = 1 / Math.sqrt(headDim);
    this.spec = { numHeads, numKvHeads: numHeads, headDim, scale, slidingWindow: 0, causal: false };
  }

  hiddenStates(step: StepContext): Tensor {
    const b = this.backend;
    const eps = this.config.normEps;
    const H = this.config.hiddenSize;
    const embedded = b.add(
      b.add(b.embedding(this.word, step, 'tokens'), b.embedding(this.position, step, 'positions')),
      b.embedding(this.tokenType, step, 'tokenTypes'),
    );
    let x = b.layerNorm(embedded, this.embedNorm.weight, this.embedNorm.bias, eps);
    for (const l of this.layers) {
      const [q, k, v] = b.splitColumns(linear(b, x, l.qkv), [H, H, H]) as [Tensor, Tensor, Tensor];
      const attn = linear(b, b.selfAttention(q, k, v, this.spec, step), l.attnOut);
      x = b.layerNorm(b.add(x, attn), l.attnNorm.weight, l.attnNorm.bias, eps);
      const mlp = linear(b, b.gelu(linear(b, x, l.up), this.geluKind), l.down);
      x = b.layerNorm(b.add(x, mlp), l.outNorm.weight, l.outNorm.bias, eps);
    }
    return x;
  }
}

function linear(b: Backend, x: Tensor, l: Linear): Tensor {
  return b.linear(x, l.weight, l.bias);
}

/** Where the encoder's tensors start: bare models have no prefix, task models put it under "bert." / "roberta.". */
export function bertRoot(w: ModelWeights, cfg: ModelConfig): string {
  const found = ['', 'bert.', 'roberta.', 'model.'].find((p) => w.has(`${p}embeddings.word_embeddings.weight`));
  if (found !== undefined) return found;
  // Dummy weights have none stored: name them as the architecture's checkpoints do.
  const task = cfg.architecture.endsWith('ForSequenceClassification');
  return task ? (isRoberta(cfg) ? 'roberta.' : 'bert.') : '';
}

/** XLM-RoBERTa and RoBERTa number positions from padding_idx + 1 (HF's create_position_ids_from_input_ids). */
export function isRoberta(cfg: ModelConfig): boolean {
  return /roberta/i.test(cfg.modelType) || /Roberta/.test(cfg.architecture);
}

export function buildBertEncoder(cfg: ModelConfig, w: ModelWeights, backend: Backend): BertEncoder {
  const { hiddenSize: H, intermediateSize: I, vocabSize } = cfg;
  const act = String(cfg.raw.hidden_act ?? 'gelu');
  const gelu = GELU[act];
  if (!gelu) {
    throw new UserError(
      `config.json: hidden_act "${act}" is not supported for ${cfg.architecture || cfg.modelType} (expected one of ${Object.keys(GELU).join(', ')})`,
    );
  }
  if (cfg.raw.position_embedding_type !== undefined && cfg.raw.position_embedding_type !== 'absolute') {
    throw new UserError(
      `config.json: position_embedding_type "${cfg.raw.position_embedding_type}" is not supported (expected "absolute")`,
    );
  }
  const root = bertRoot(w, cfg);
  const lin = (name: string, out: number, inp: number): Linear => ({
    weight: w.load(`${name}.weight`, [out, inp]),
    bias: w.load(`${name}.bias`, [out]),
  });
  const norm = (name: string): Linear => ({ weight: w.load(`${name}.weight`, [H]), bias: w.load(`${name}.bias`, [H]) });
  const layers = Array.from({ length: cfg.numLayers }, (_, i): BertLayer => {
    const p = `${root}encoder.layer.${i}`;
    const parts = ['query', 'key', 'value'].map((n) => `${p}.attention.self.${n}`);
    return {
      qkv: {
        weight: w.loadPacked(parts.map((n) => ({ name: `${n}.weight`, shape: [H, H] }))),
        bias: w.loadPacked(parts.map((n) => ({ name: `${n}.bias`, shape: [H] }))),
      },
      attnOut: lin(`${p}.attention.output.dense`, H, H),
      attnNorm: norm(`${p}.attention.output.LayerNorm`),
      up: lin(`${p}.intermediate.dense`, I, H),
      down: lin(`${p}.output.dense`, H, I),
      outNorm: norm(`${p}.output.LayerNorm`),
    };
  });
  const e = `${root}embeddings`;
  const maxPos = cfg.maxPositionEmbeddings;
  // RoBERTa's first padding_idx + 1 position rows are never used: drop them so that position p reads row p.
  const skip = isRoberta(cfg) ? Number(cfg.raw.pad_token_id ?? 1) + 1 : 0;
  const positions = w.host(`${e}.position_embeddings.weight`, [maxPos, H]);
  const typeRows = typeof cfg.raw.type_vocab_size === 'number' ? cfg.raw.type_vocab_size : 2;
  return new BertEncoder(
    cfg,
    backend,
    maxPos - skip,
    gelu,
    w.load(`${e}.word_embeddings.weight`, [vocabSize, H]),
    backend.loadWeight(dropRows(positions, skip)),
    w.load(`${e}.token_type_embeddings.weight`, [typeRows, H]),
    norm(`${e}.LayerNorm`),
    layers,
  );
}

/** The tensor without its first `n` rows (a view of the same bytes; dummy weights have none). */
function dropRows(t: HostTensor, n: number): HostTensor {
  if (n === 0) return t;
  const [rows, cols] = t.shape as [number, number];
  const rowBytes = t.bytes.byteLength / rows;
  return { ...t, shape: [rows - n, cols], bytes: t.bytes.subarray(n * rowBytes) };
}
