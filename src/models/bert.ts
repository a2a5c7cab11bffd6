import type { Activation, AttentionSpec, Backend, HostTensor, StepContext, Tensor } from '../backend/backend.ts';
import type { RopeSpec } from '../backend/rope-spec.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import { UserError } from '../util/errors.ts';
import { plainActivation } from './activation.ts';
import type { Encoder } from './model.ts';
import { ropeSpecFromConfig } from './rope.ts';
import type { ModelWeights } from './weights.ts';

interface Linear {
  weight: Tensor;
  bias?: Tensor;
}

interface Norm {
  weight: Tensor;
  bias: Tensor;
}

/** BERT's GELU MLP (up, GELU, down) or nomic-bert's SwiGLU (silu(gate) * up packed as one linear, then down). */
type BertMlp = { up: Linear; act: Activation; down: Linear } | { gateUp: Linear; down: Linear };

/** Where positions come from: BERT's learned table added to the embeddings, or nomic-bert's rotary q and k. */
type BertPositions = { table: Tensor } | { rope: RopeSpec };

interface BertLayer {
  /** query, key and value packed along the output features. */
  qkv: Linear;
  attnOut: Linear;
  attnNorm: Norm;
  mlp: BertMlp;
  outNorm: Norm;
}

/**
 * BERT-family encoders: word (+ learned position) + token-type embeddings, LayerNorm, then post-norm layers of
 * bidirectional attention (rotary q/k for nomic-bert) and a GELU or SwiGLU MLP. BERT and XLM-RoBERTa, and
 * nomic-bert (nomic-embed-text). Every sequence runs whole in one step with no KV cache.
 */
export class BertEncoder implements Encoder {
  private readonly spec: AttentionSpec;

  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    readonly maxPositions: number,
    private readonly word: Tensor,
    private readonly positions: BertPositions,
    private readonly tokenType: Tensor,
    private readonly embedNorm: Norm,
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
    const p = this.positions;
    const word = b.embedding(this.word, step, 'tokens');
    const placed = 'table' in p ? b.add(word, b.embedding(p.table, step, 'positions')) : word;
    const embedded = b.add(placed, b.embedding(this.tokenType, step, 'tokenTypes'));
    let x = b.layerNorm(embedded, this.embedNorm.weight, this.embedNorm.bias, eps);
    for (const l of this.layers) {
      const [q, k, v] = b.splitColumns(linear(b, x, l.qkv), [H, H, H]) as [Tensor, Tensor, Tensor];
      if ('rope' in p) b.rope(q, k, this.spec.headDim, p.rope, step);
      const attn = linear(b, b.selfAttention(q, k, v, this.spec, step), l.attnOut);
      x = b.layerNorm(b.add(x, attn), l.attnNorm.weight, l.attnNorm.bias, eps);
      x = b.layerNorm(b.add(x, mlp(b, x, l.mlp)), l.outNorm.weight, l.outNorm.bias, eps);
    }
    return x;
  }
}

function linear(b: Backend, x: Tensor, l: Linear): Tensor {
  return b.linear(x, l.weight, l.bias);
}

function mlp(b: Backend, x: Tensor, m: BertMlp): Tensor {
  const hidden =
    'gateUp' in m
      ? b.linearActMul(x, m.gateUp.weight, m.gateUp.bias, 'silu', m.down.weight)
      : b.activation(linear(b, x, m.up), m.act);
  return linear(b, hidden, m.down);
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

/**
 * The positions a pooling model's stack takes: its position rows, less RoBERTa's first padding_idx + 1, which are
 * never used. Decoders and rotary encoders take max_position_embeddings.
 */
export function positionCount(cfg: ModelConfig): number {
  return cfg.maxPositionEmbeddings - (isRoberta(cfg) ? Number(cfg.raw.pad_token_id ?? 1) + 1 : 0);
}

/**
 * nomic-bert (NomicBertModel, nomic-embed-text v1/v1.5): BERT with rotary positions (NeoX pairing over the whole
 * head), fused QKV and a SwiGLU MLP, without biases. From a GGUF file (llama.cpp's `nomic-bert`) or a folder whose
 * NomicBertConfig loader/nomic-bert-config.ts maps to the same config.
 */
export function isNomicBert(cfg: ModelConfig): boolean {
  return cfg.modelType === 'nomic_bert';
}

export function buildBertEncoder(cfg: ModelConfig, w: ModelWeights, backend: Backend): BertEncoder {
  return isNomicBert(cfg) ? buildNomicBert(cfg, w, backend) : buildBert(cfg, w, backend);
}

/** A LayerNorm's weight and bias of `size` features. */
function loadNorm(w: ModelWeights, name: string, size: number): Norm {
  return { weight: w.load(`${name}.weight`, [size]), bias: w.load(`${name}.bias`, [size]) };
}

function buildBert(cfg: ModelConfig, w: ModelWeights, backend: Backend): BertEncoder {
  const { hiddenSize: H, intermediateSize: I, vocabSize } = cfg;
  const act = plainActivation(String(cfg.raw.hidden_act ?? 'gelu'), 'hidden_act', cfg.architecture || cfg.modelType);
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
  const layers = Array.from({ length: cfg.numLayers }, (_, i): BertLayer => {
    const p = `${root}encoder.layer.${i}`;
    const parts = ['query', 'key', 'value'].map((n) => `${p}.attention.self.${n}`);
    return {
      qkv: {
        weight: w.loadPacked(parts.map((n) => ({ name: `${n}.weight`, shape: [H, H] }))),
        bias: w.loadPacked(parts.map((n) => ({ name: `${n}.bias`, shape: [H] }))),
      },
      attnOut: lin(`${p}.attention.output.dense`, H, H),
      attnNorm: loadNorm(w, `${p}.attention.output.LayerNorm`, H),
      mlp: { up: lin(`${p}.intermediate.dense`, I, H), act, down: lin(`${p}.output.dense`, H, I) },
      outNorm: loadNorm(w, `${p}.output.LayerNorm`, H),
    };
  });
  const e = `${root}embeddings`;
  const maxPos = cfg.maxPositionEmbeddings;
  // RoBERTa's unused first rows are dropped so that position p reads row p.
  const skip = maxPos - positionCount(cfg);
  const positions = w.host(`${e}.position_embeddings.weight`, [maxPos, H]);
  return new BertEncoder(
    cfg,
    backend,
    positionCount(cfg),
    w.load(`${e}.word_embeddings.weight`, [vocabSize, H]),
    { table: backend.loadWeight(dropRows(positions, skip)) },
    w.load(`${e}.token_type_embeddings.weight`, [typeRows(cfg), H]),
    loadNorm(w, `${e}.LayerNorm`, H),
    layers,
  );
}

/**
 * nomic-bert under NomicBertModel's checkpoint names (gguf/tensor-names.ts). As llama.cpp: the attention's biases
 * are used where the file has them, the MLP's never (NomicBertModel's fc11 is the up projection, fc12 the gate).
 */
function buildNomicBert(cfg: ModelConfig, w: ModelWeights, backend: Backend): BertEncoder {
  const { hiddenSize: H, intermediateSize: I, vocabSize } = cfg;
  const bias = (name: string, size: number) => (w.has(`${name}.bias`) ? w.load(`${name}.bias`, [size]) : undefined);
  const layers = Array.from({ length: cfg.numLayers }, (_, i): BertLayer => {
    const p = `encoder.layers.${i}`;
    return {
      qkv: { weight: w.load(`${p}.attn.Wqkv.weight`, [3 * H, H]), bias: bias(`${p}.attn.Wqkv`, 3 * H) },
      attnOut: { weight: w.load(`${p}.attn.out_proj.weight`, [H, H]), bias: bias(`${p}.attn.out_proj`, H) },
      attnNorm: loadNorm(w, `${p}.norm1`, H),
      mlp: {
        gateUp: {
          weight: w.loadPacked([`${p}.mlp.fc12`, `${p}.mlp.fc11`].map((n) => ({ name: `${n}.weight`, shape: [I, H] }))),
        },
        down: { weight: w.load(`${p}.mlp.fc2.weight`, [H, I]) },
      },
      outNorm: loadNorm(w, `${p}.norm2`, H),
    };
  });
  return new BertEncoder(
    cfg,
    backend,
    cfg.maxPositionEmbeddings,
    w.load('embeddings.word_embeddings.weight', [vocabSize, H]),
    { rope: ropeSpecFromConfig(cfg, 'neox') },
    w.load('embeddings.token_type_embeddings.weight', [typeRows(cfg), H]),
    loadNorm(w, 'emb_ln', H),
    layers,
  );
}

/** The token-type table's rows (type_vocab_size; BERT's 2 where the config leaves it out). */
function typeRows(cfg: ModelConfig): number {
  return typeof cfg.raw.type_vocab_size === 'number' ? cfg.raw.type_vocab_size : 2;
}

/** The tensor without its first `n` rows (a view of the same bytes; dummy weights have none). */
function dropRows(t: HostTensor, n: number): HostTensor {
  if (n === 0) return t;
  const [rows, cols] = t.shape as [number, number];
  const rowBytes = t.bytes.byteLength / rows;
  return { ...t, shape: [rows - n, cols], bytes: t.bytes.subarray(n * rowBytes) };
}
