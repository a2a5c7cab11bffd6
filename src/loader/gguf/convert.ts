import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { encodeAs } from '../../primitives/float-bits.ts';
import { type DType, type HostTensor, toFloat32 } from '../../primitives/host-tensor.ts';
import type { PoolingMode } from '../../primitives/pooling.ts';
import { UserError } from '../../util/errors.ts';
import { loadChatTemplate } from '../chat-template.ts';
import { openCheckpoint } from '../fp8-weights.ts';
import { graniteMultipliers } from '../granite-config.ts';
import { loadGenerationConfig, loadModelConfig, type ModelConfig, readJson } from '../hf-config.ts';
import { modelTask } from '../model-task.ts';
import { FP8_SCALE_TENSOR } from '../quantization-config.ts';
import { QWEN3_RERANK_TEMPLATE, QWEN3_RERANK_TOKENS, qwen3RerankRows } from '../qwen3-reranker.ts';
import { readSentenceTransformers } from '../sentence-transformers.ts';
import { smollm3RotatedLayers } from '../smollm3-config.ts';
import { readTokenizerConfig } from '../tokenizer.ts';
import { EXAONE4_HYBRID_LAYERS, GGUF_POOLING, type GgufPooling } from './config.ts';
import { expertMetadata, MOE_ARCHS, stackedExperts } from './convert-experts.ts';
import { type GgufValue, gguf } from './format.ts';
import { ggufTensorName, hfTensorName, type TensorChange } from './tensor-names.ts';
import { ggufTokenizerMetadata } from './tokenizer-export.ts';
import { permuteRopeRows, transposeBytes } from './weights.ts';
import { type GgufTensorOut, writeGguf } from './write.ts';

/** transformers architectures → the GGUF architecture llama.cpp stores them as. */
export const GGUF_ARCH: Record<string, string> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'llama',
  MixtralForCausalLM: 'llama',
  GraniteForCausalLM: 'granite',
  GraniteMoeForCausalLM: 'granitemoe',
  GraniteMoeSharedForCausalLM: 'granitemoe',
  SmolLM3ForCausalLM: 'smollm3',
  SeedOssForCausalLM: 'seed_oss',
  ArceeForCausalLM: 'arcee',
  Ernie4_5ForCausalLM: 'ernie4_5',
  GlmForCausalLM: 'chatglm',
  Glm4ForCausalLM: 'glm4',
  Olmo2ForCausalLM: 'olmo2',
  Olmo3ForCausalLM: 'olmo2',
  Exaone4ForCausalLM: 'exaone4',
  OlmoeForCausalLM: 'olmoe',
  Starcoder2ForCausalLM: 'starcoder2',
  StableLmForCausalLM: 'stablelm',
  NemotronForCausalLM: 'nemotron',
  PhiForCausalLM: 'phi2',
  CohereForCausalLM: 'command-r',
  Cohere2ForCausalLM: 'cohere2',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  Qwen3Model: 'qwen3',
  Qwen2MoeForCausalLM: 'qwen2moe',
  Qwen3MoeForCausalLM: 'qwen3moe',
  GPT2LMHeadModel: 'gpt2',
  GPTBigCodeForCausalLM: 'starcoder',
  BertModel: 'bert',
  BertForSequenceClassification: 'bert',
  XLMRobertaModel: 'bert',
  XLMRobertaForSequenceClassification: 'bert',
};

/**
 * XLM-R numbers positions from padding_idx + 1: llama.cpp's converter drops the rows before it (and counts the
 * context without them), so position p reads row p.
 */
function positionOffset(cfg: ModelConfig): number {
  const pad = cfg.raw.pad_token_id;
  return cfg.modelType === 'xlm-roberta' && typeof pad === 'number' ? pad + 1 : 0;
}

/** sentence-transformers' pooling → llama.cpp's `{arch}.pooling_type` (GGUF_POOLING's index). */
const POOLING_TYPE: Partial<Record<PoolingMode, GgufPooling>> = { mean: 'mean', cls: 'cls', last: 'last' };

/**
 * The pooling a pooling model's GGUF names: rank for a reranker, else its sentence-transformers pooling; none for a
 * generating model.
 */
function poolingMetadata(dir: string, cfg: ModelConfig, arch: string): Map<string, GgufValue> {
  const task = modelTask(dir, cfg);
  if (task === 'generate') return new Map();
  const rank: [string, GgufValue] = [`${arch}.pooling_type`, gguf.u32(GGUF_POOLING.indexOf('rank'))];
  if (task === 'score' && arch === 'qwen3') {
    // As llama.cpp's converter writes a Qwen3-Reranker: its labels, and the text each pair becomes.
    return new Map([
      rank,
      [`${arch}.classifier.output_labels`, gguf.array('string', [...QWEN3_RERANK_TOKENS])],
      ['tokenizer.chat_template.rerank', gguf.str(QWEN3_RERANK_TEMPLATE)],
    ]);
  }
  if (task === 'score') return new Map([rank]);
  const mode = readSentenceTransformers(dir, cfg.hiddenSize)?.pooling ?? (arch === 'bert' ? 'cls' : 'last');
  const pooling = POOLING_TYPE[mode];
  if (!pooling) throw new UserError(`${join(dir, 'modules.json')}: ${mode} pooling has no llama.cpp pooling type`);
  return new Map([[`${arch}.pooling_type`, gguf.u32(GGUF_POOLING.indexOf(pooling))]]);
}

/** llama.cpp's `general.file_type` (LLAMA_FTYPE) of an all-F32/F16/BF16 file. */
const FILE_TYPE: Record<DType, number> = { f32: 0, f16: 1, bf16: 32 };

/** Buffers a transformers checkpoint holds that are not weights (GPT-2's causal masks, cached RoPE tables). */
const BUFFERS = /\.(attn\.bias|attn\.masked_bias|rotary_emb\.inv_freq)$/;
/** Not written: buffers, and an FP8 checkpoint's scales (its weights are read dequantized). */
const notWeight = (name: string) => BUFFERS.test(name) || FP8_SCALE_TENSOR.test(name);
/** BERT's pooler: an embedder's is dropped, as llama.cpp's converter does; a reranker's is its head's `cls`. */
const POOLER = /^(bert\.|roberta\.)?pooler\.dense\.(weight|bias)$/;

/** The architectures whose norms are LayerNorms (llama.cpp's `layer_norm_epsilon`; the others' are RMSNorms). */
const LAYER_NORM = new Set(['phi2', 'starcoder2', 'stablelm', 'nemotron', 'command-r', 'cohere2']);

/** llama.cpp's fixed hybrids (olmo2, cohere2, exaone4 windows; smollm3's RoPE): every layer but each fourth. */
const notFourth = (layer: number) => (layer + 1) % 4 !== 0;

/**
 * The window of a model whose layers slide three of every four and attend fully in the fourth, the only hybrid
 * llama.cpp's olmo2 and cohere2 express (no key says which layers slide): a config that says otherwise is refused.
 */
function slidingEveryFourth(cfg: ModelConfig, arch: string): number {
  const types = cfg.raw.layer_types;
  const pattern = cfg.raw.sliding_window_pattern ?? cfg.raw._sliding_window_pattern;
  if (Array.isArray(types) && types.some((t, i) => (t === 'sliding_attention') !== notFourth(i))) {
    throw new UserError(
      `config.json: layer_types ${JSON.stringify(types)} cannot be written to GGUF (llama.cpp's ${arch} slides three layers of every four)`,
    );
  }
  if (!Array.isArray(types) && pattern !== undefined && pattern !== 4 && pattern !== 'LLLG') {
    throw new UserError(
      `config.json: sliding_window_pattern ${JSON.stringify(pattern)} cannot be written to GGUF (llama.cpp's ${arch} slides three layers of every four)`,
    );
  }
  return cfg.slidingWindow;
}

function graniteScales(cfg: ModelConfig): [string, GgufValue][] {
  const m = graniteMultipliers(cfg);
  return [
    ['embedding_scale', gguf.f32(m.embedding)],
    ['residual_scale', gguf.f32(m.residual)],
    ['attention.scale', gguf.f32(m.attention)],
    ['logit_scale', gguf.f32(m.logitsDivisor)],
  ];
}

/** `{arch}.*` keys beyond the common ones, from the config. */
const ARCH_METADATA: Record<string, (cfg: ModelConfig) => [string, GgufValue][]> = {
  granite: (cfg) => graniteScales(cfg),
  granitemoe: (cfg) => graniteScales(cfg),
  'command-r': (cfg) => [['logit_scale', gguf.f32(Number(cfg.raw.logit_scale))]],
  smollm3: (cfg) => {
    // llama.cpp's smollm3 leaves every fourth layer unrotated and has no key to say otherwise.
    const rotated = smollm3RotatedLayers(cfg);
    if (rotated.some((r, i) => r !== notFourth(i))) {
      throw new UserError(
        `config.json: no_rope_layers ${JSON.stringify(rotated.map(Number))} cannot be written to GGUF (llama.cpp's smollm3 leaves every fourth layer unrotated)`,
      );
    }
    return [];
  },
  // llama.cpp's olmoe sizes k's norm by the hidden size: multi-head attention only (as every released OLMoE).
  olmoe: (cfg) => {
    if (cfg.numKvHeads !== cfg.numHeads) {
      throw new UserError(
        `config.json: ${cfg.numKvHeads} KV heads for ${cfg.numHeads} query heads cannot be written to GGUF (llama.cpp's olmoe has multi-head attention only)`,
      );
    }
    return [];
  },
  seed_oss: (cfg) => {
    if (cfg.raw.attention_out_bias === true) {
      throw new UserError(
        "config.json: attention_out_bias true cannot be written to GGUF (llama.cpp's seed_oss has no o_proj bias)",
      );
    }
    return [];
  },
  starcoder2: (cfg) => (cfg.slidingWindow > 0 ? [['attention.sliding_window', gguf.u32(cfg.slidingWindow)]] : []),
  olmo2: (cfg) =>
    cfg.architecture === 'Olmo3ForCausalLM'
      ? [['attention.sliding_window', gguf.u32(slidingEveryFourth(cfg, 'olmo2'))]]
      : [],
  exaone4: (cfg) => {
    // llama.cpp's exaone4 is hybrid at 64 layers and only there: a config on the other side of that line is refused.
    const hybrid = typeof cfg.raw.sliding_window === 'number';
    if (hybrid !== (cfg.numLayers === EXAONE4_HYBRID_LAYERS)) {
      throw new UserError(
        `config.json: ${hybrid ? 'a sliding window' : 'no sliding window'} with ${cfg.numLayers} layers cannot be written to GGUF (llama.cpp's exaone4 slides exactly when there are ${EXAONE4_HYBRID_LAYERS})`,
      );
    }
    return hybrid ? [['attention.sliding_window', gguf.u32(slidingEveryFourth(cfg, 'exaone4'))]] : [];
  },
  cohere2: (cfg) => [
    ['logit_scale', gguf.f32(Number(cfg.raw.logit_scale))],
    ['attention.sliding_window', gguf.u32(slidingEveryFourth(cfg, 'cohere2'))],
  ],
};

export function archMetadata(cfg: ModelConfig, arch: string, name: string, type: DType): Map<string, GgufValue> {
  const k = (key: string) => `${arch}.${key}`;
  const meta = new Map<string, GgufValue>([
    ['general.architecture', gguf.str(arch)],
    ['general.name', gguf.str(name)],
    ['general.file_type', gguf.u32(FILE_TYPE[type])],
    [k('vocab_size'), gguf.u32(cfg.vocabSize)],
    [k('context_length'), gguf.u32(cfg.maxPositionEmbeddings - positionOffset(cfg))],
    [k('embedding_length'), gguf.u32(cfg.hiddenSize)],
    [k('block_count'), gguf.u32(cfg.numLayers)],
    [k('feed_forward_length'), gguf.u32(cfg.intermediateSize)],
    [k('attention.head_count'), gguf.u32(cfg.numHeads)],
  ]);
  // Learned positions: no RoPE keys.
  if (arch === 'gpt2' || arch === 'starcoder' || arch === 'bert') {
    meta.set(k('attention.layer_norm_epsilon'), gguf.f32(cfg.normEps));
    if (arch === 'starcoder') meta.set(k('attention.head_count_kv'), gguf.u32(cfg.numKvHeads));
    if (arch === 'bert') {
      meta.set(k('attention.causal'), gguf.bool(false));
      meta.set('tokenizer.ggml.token_type_count', gguf.u32(Number(cfg.raw.type_vocab_size ?? 2)));
    }
    return meta;
  }
  meta.set(k('attention.head_count_kv'), gguf.u32(cfg.numKvHeads));
  meta.set(k('attention.key_length'), gguf.u32(cfg.headDim));
  meta.set(k('attention.value_length'), gguf.u32(cfg.headDim));
  meta.set(k('rope.dimension_count'), gguf.u32(Math.floor(cfg.headDim * cfg.partialRotaryFactor)));
  meta.set(k('rope.freq_base'), gguf.f32(cfg.ropeTheta));
  meta.set(
    k(LAYER_NORM.has(arch) ? 'attention.layer_norm_epsilon' : 'attention.layer_norm_rms_epsilon'),
    gguf.f32(cfg.normEps),
  );
  for (const [key, value] of ARCH_METADATA[arch]?.(cfg) ?? []) meta.set(k(key), value);
  if (isMoe(cfg, arch)) for (const [key, value] of expertMetadata(cfg, arch)) meta.set(k(key), value);
  const s = cfg.ropeScaling;
  if (s?.type === 'linear') {
    meta.set(k('rope.scaling.type'), gguf.str('linear'));
    meta.set(k('rope.scaling.factor'), gguf.f32(Number(s.factor)));
  } else if (s?.type === 'yarn') {
    meta.set(k('rope.scaling.type'), gguf.str('yarn'));
    meta.set(k('rope.scaling.factor'), gguf.f32(Number(s.factor)));
    meta.set(k('rope.scaling.original_context_length'), gguf.u32(Number(s.original_max_position_embeddings)));
  } else if (s) {
    throw new UserError(`config.json: rope scaling "${s.type}" cannot be written to GGUF yet (linear and yarn can)`);
  }
  return meta;
}

/** Whether the model's MLPs are mixtures of experts (Mixtral's GGUF architecture is llama's). */
const isMoe = (cfg: ModelConfig, arch: string) =>
  MOE_ARCHS.has(arch) && (arch !== 'llama' || cfg.architecture === 'MixtralForCausalLM');

/** One checkpoint tensor as llama.cpp's converter writes it: its name, shape, type and the change applied. */
export interface PlannedTensor {
  hf: string;
  name: string;
  shape: readonly number[];
  dtype: DType;
  change: TensorChange | null;
}

export function planTensor(arch: string, hf: string, shape: readonly number[], type: DType): PlannedTensor {
  // GPT-2 and bare decoders (Qwen3Model) store their tensors without the prefix the name tables have, BERT's task
  // models with one ("bert.", "roberta.") that llama.cpp's names leave out. RoBERTa's head (dense, out_proj) is
  // stored where BERT's pooler and classifier are.
  const head = hf.replace(/^classifier\.dense\./, 'pooler.dense.').replace(/^classifier\.out_proj\./, 'classifier.');
  const names = [hf, `transformer.${hf}`, `model.${hf}`, hf.replace(/^(bert|roberta)\./, ''), head];
  const name = names.map((n) => ggufTensorName(arch, n)).find((n) => n !== null);
  if (!name) throw new UserError(`${hf}: no llama.cpp tensor name for it in a ${arch} GGUF file`);
  const change = hfTensorName(arch, name)?.change ?? null;
  return {
    hf,
    name,
    shape: change?.kind === 'transposed' ? [...shape].reverse() : shape,
    // llama.cpp keeps 1-D tensors (norms, biases) in F32 whatever the file type.
    dtype: shape.length === 1 ? 'f32' : type,
    change,
  };
}

/**
 * The planned tensor's bytes: converted to its type, Q/K rows interleaved (llama), Conv1D transposed (GPT-2), norm
 * weights stored as 1 + w (Nemotron).
 */
function tensorBytes(p: PlannedTensor, t: HostTensor, cfg: ModelConfig): Uint8Array {
  if (p.change?.kind === 'norm-plus-one')
    return encodeAs(
      toFloat32(t).map((v) => v + 1),
      p.dtype,
    );
  const bytes = t.dtype === p.dtype ? t.bytes : encodeAs(toFloat32(t), p.dtype);
  const [rows, cols] = [t.shape[0]!, t.shape[1] ?? 1];
  if (p.change?.kind === 'rope-rows') {
    return permuteRopeRows(bytes, rows, p.change.heads === 'q' ? cfg.numHeads : cfg.numKvHeads, true);
  }
  if (p.change?.kind === 'transposed') return transposeBytes(bytes, rows, cols);
  return bytes;
}

/**
 * Writes a Hugging Face model folder as one GGUF file llama.cpp loads: metadata from config.json, the tokenizer
 * and chat template, every weight in `type` (1-D ones in F32). Tensors are read and written one at a time.
 */
export function convertToGguf(dir: string, out: string, type: DType): { tensors: number; arch: string } {
  const cfg = loadModelConfig(dir);
  const arch = GGUF_ARCH[cfg.architecture];
  if (!arch) {
    throw new UserError(
      `${join(dir, 'config.json')}: architecture "${cfg.architecture}" cannot be converted to GGUF (supported: ${Object.keys(GGUF_ARCH).join(', ')})`,
    );
  }
  const meta = archMetadata(cfg, arch, basename(dir), type);
  for (const [key, v] of poolingMetadata(dir, cfg, arch)) meta.set(key, v);
  const tokenizerPath = join(dir, 'tokenizer.json');
  if (existsSync(tokenizerPath)) {
    const generation = loadGenerationConfig(dir, cfg);
    const tokenizerMeta = ggufTokenizerMetadata(
      readJson(tokenizerPath),
      readTokenizerConfig(dir),
      generation.eosTokenIds,
      cfg.vocabSize,
      tokenizerPath,
    );
    for (const [key, v] of tokenizerMeta) meta.set(key, v);
  }
  const template = loadChatTemplate(dir);
  if (template) meta.set('tokenizer.chat_template', gguf.str(template.source));
  // An FP8 checkpoint's weights are dequantized as they are read, then written in `type` like any other.
  const source = openCheckpoint(dir, cfg, 'f32').weights;
  try {
    // A tied checkpoint may still carry lm_head.weight; llama.cpp reuses token_embd when output is absent. A
    // Qwen3-Reranker's head is two of its rows (cls.output), so its LM head is not written either.
    const task = modelTask(dir, cfg);
    const dropPooler = arch === 'bert' && task !== 'score';
    const reranker = arch === 'qwen3' && task === 'score';
    const names = source
      .names()
      .filter(
        (n) =>
          !notWeight(n) &&
          !(dropPooler && POOLER.test(n)) &&
          !((cfg.tieWordEmbeddings || reranker) && n === 'lm_head.weight'),
      );
    const offset = positionOffset(cfg);
    const experts = isMoe(cfg, arch) ? stackedExperts(arch, cfg, source, names, type) : { tensors: [], names };
    const tensors: GgufTensorOut[] = experts.names.map((n) => {
      const p = planTensor(arch, n, source.describe(n).shape, type);
      if (offset === 0 || p.name !== 'position_embd.weight') {
        return { ...p, bytes: () => tensorBytes(p, source.get(n), cfg) };
      }
      const [rows, cols] = p.shape as [number, number];
      const bytes = () => {
        const all = tensorBytes(p, source.get(n), cfg);
        return all.subarray((all.byteLength / rows) * offset);
      };
      return { ...p, shape: [rows - offset, cols], bytes };
    });
    tensors.push(...experts.tensors);
    if (reranker) {
      const rows = Float32Array.from(qwen3RerankRows(dir, cfg, source).flatMap((r) => [...r]));
      tensors.push({
        name: 'cls.output.weight',
        shape: [QWEN3_RERANK_TOKENS.length, cfg.hiddenSize],
        dtype: type,
        bytes: () => encodeAs(rows, type),
      });
    }
    writeGguf(out, meta, tensors);
    return { tensors: tensors.length, arch };
  } finally {
    source.close();
  }
}
