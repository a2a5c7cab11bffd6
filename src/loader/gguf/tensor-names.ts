/**
 * llama.cpp's tensor names ↔ transformers' (pagoda's models load by the latter), per GGUF architecture, and what
 * llama.cpp's converter did to each tensor that must be undone on the way in (and redone by `pagoda convert`).
 */

/** How a stored tensor differs from the transformers checkpoint's. */
export type TensorChange =
  /** llama.cpp's converter interleaves each head's two RoPE halves (llama-family q/k rows); `heads` per tensor. */
  | { kind: 'rope-rows'; heads: 'q' | 'kv' }
  /** Gemma's RMSNorm weights (and Nemotron's LayerNorm ones) are stored as 1 + w. */
  | { kind: 'norm-plus-one' }
  /** GPT-2's Conv1D weights are stored transposed to [out, in]. */
  | { kind: 'transposed' }
  /** One [experts, rows, cols] tensor holds every expert's matrix (transformers: one tensor per expert). */
  | { kind: 'experts'; part: string };

interface NameTable {
  /** Tensors outside the blocks: llama.cpp name (without .weight/.bias) → transformers name. */
  global: Record<string, string>;
  /** The transformers prefix of block N. */
  block: (n: number) => string;
  /** Tensors of a block: llama.cpp name → transformers name under the block prefix. */
  layer: Record<string, string>;
  /** Each expert's gate, up and down projection names (`ffn_{gate,up,down}_exps`): Qwen's where absent. */
  expertParts?: ExpertParts;
}

export interface ExpertParts {
  gate: string;
  up: string;
  down: string;
}

const QWEN_EXPERT_PARTS: ExpertParts = { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' };

/** The transformers names of a GGUF architecture's expert projections. */
export function expertPartsOf(arch: string): ExpertParts {
  return TABLES[arch]?.expertParts ?? QWEN_EXPERT_PARTS;
}

const LLAMA_LAYER: Record<string, string> = {
  attn_norm: 'input_layernorm',
  attn_q: 'self_attn.q_proj',
  attn_k: 'self_attn.k_proj',
  attn_v: 'self_attn.v_proj',
  attn_output: 'self_attn.o_proj',
  attn_q_norm: 'self_attn.q_norm',
  attn_k_norm: 'self_attn.k_norm',
  ffn_norm: 'post_attention_layernorm',
  ffn_gate: 'mlp.gate_proj',
  ffn_up: 'mlp.up_proj',
  ffn_down: 'mlp.down_proj',
};

const LLAMA: NameTable = {
  global: { token_embd: 'model.embed_tokens', output_norm: 'model.norm', output: 'lm_head' },
  block: (n) => `model.layers.${n}.`,
  layer: LLAMA_LAYER,
};

const GEMMA2: NameTable = {
  ...LLAMA,
  layer: {
    ...LLAMA_LAYER,
    post_attention_norm: 'post_attention_layernorm',
    ffn_norm: 'pre_feedforward_layernorm',
    post_ffw_norm: 'post_feedforward_layernorm',
  },
};

/** Llama, and Mixtral stored as llama with its experts stacked (transformers' block_sparse_moe names). */
const LLAMA_OR_MIXTRAL: NameTable = {
  ...LLAMA,
  layer: {
    ...LLAMA_LAYER,
    ffn_gate_inp: 'block_sparse_moe.gate',
    ffn_gate_exps: 'block_sparse_moe.experts',
    ffn_up_exps: 'block_sparse_moe.experts',
    ffn_down_exps: 'block_sparse_moe.experts',
  },
  expertParts: { gate: 'w1', up: 'w3', down: 'w2' },
};

const GPT2: NameTable = {
  global: {
    token_embd: 'transformer.wte',
    position_embd: 'transformer.wpe',
    output_norm: 'transformer.ln_f',
  },
  block: (n) => `transformer.h.${n}.`,
  layer: {
    attn_norm: 'ln_1',
    attn_qkv: 'attn.c_attn',
    attn_output: 'attn.c_proj',
    ffn_norm: 'ln_2',
    ffn_up: 'mlp.c_fc',
    ffn_down: 'mlp.c_proj',
  },
};

/** Llama's layer without its two pre-norms. */
const { attn_norm, ffn_norm, ...LLAMA_PROJECTIONS } = LLAMA_LAYER;

/** OLMo 2 / 3: no norm before attention or the MLP; the norms of their outputs, and q / k across heads. */
const OLMO2: NameTable = {
  ...LLAMA,
  layer: {
    ...LLAMA_PROJECTIONS,
    post_attention_norm: 'post_attention_layernorm',
    post_ffw_norm: 'post_feedforward_layernorm',
  },
};

/** Phi-3 and ChatGLM: Llama's names, q/k/v packed in attn_qkv (ChatGLM's: or apart), gate and up in ffn_up. */
const FUSED_LLAMA: NameTable = {
  ...LLAMA,
  layer: { ...LLAMA_LAYER, attn_qkv: 'self_attn.qkv_proj', ffn_up: 'mlp.gate_up_proj' },
};

/** Seed-OSS: Llama's names, its MLP's norm under llama.cpp's post-attention name. */
const SEED_OSS: NameTable = {
  ...LLAMA,
  layer: { ...LLAMA_PROJECTIONS, attn_norm: 'input_layernorm', post_attention_norm: 'post_attention_layernorm' },
};

/** GLM-4: Llama's names, gate and up packed in ffn_up, the norms of each sublayer's output. */
const GLM4: NameTable = {
  ...LLAMA,
  layer: {
    ...LLAMA_LAYER,
    post_attention_norm: 'post_self_attn_layernorm',
    ffn_up: 'mlp.gate_up_proj',
    post_ffw_norm: 'post_mlp_layernorm',
  },
};

/** StarCoder2: Llama's names with LayerNorm biases and a plain MLP. */
const STARCODER2: NameTable = { ...LLAMA, layer: { ...LLAMA_LAYER, ffn_up: 'mlp.c_fc', ffn_down: 'mlp.c_proj' } };

/** Phi-2: one LayerNorm a layer; q/k/v apart or (files converted from its first checkpoints) fused. */
const PHI2: NameTable = {
  global: { token_embd: 'model.embed_tokens', output_norm: 'model.final_layernorm', output: 'lm_head' },
  block: LLAMA.block,
  layer: {
    attn_norm: 'input_layernorm',
    attn_q: 'self_attn.q_proj',
    attn_k: 'self_attn.k_proj',
    attn_v: 'self_attn.v_proj',
    attn_qkv: 'self_attn.qkv_proj',
    attn_output: 'self_attn.dense',
    ffn_up: 'mlp.fc1',
    ffn_down: 'mlp.fc2',
  },
};

const MOE: NameTable = {
  ...LLAMA,
  layer: {
    ...LLAMA_LAYER,
    ffn_gate_inp: 'mlp.gate',
    ffn_gate_exps: 'mlp.experts',
    ffn_up_exps: 'mlp.experts',
    ffn_down_exps: 'mlp.experts',
    ffn_gate_inp_shexp: 'mlp.shared_expert_gate',
    ffn_gate_shexp: 'mlp.shared_expert.gate_proj',
    ffn_up_shexp: 'mlp.shared_expert.up_proj',
    ffn_down_shexp: 'mlp.shared_expert.down_proj',
  },
};

const TABLES: Record<string, NameTable> = {
  llama: LLAMA_OR_MIXTRAL,
  qwen2: LLAMA,
  qwen2vl: LLAMA,
  qwen3vl: LLAMA,
  qwen25vl: LLAMA,
  granite: LLAMA,
  smollm3: LLAMA,
  seed_oss: SEED_OSS,
  arcee: LLAMA,
  ernie4_5: LLAMA,
  glm4: GLM4,
  internlm2: LLAMA,
  mistral3: LLAMA,
  exaone: LLAMA,
  olmo2: OLMO2,
  exaone4: OLMO2,
  starcoder2: STARCODER2,
  stablelm: LLAMA,
  nemotron: LLAMA,
  phi2: PHI2,
  'command-r': LLAMA,
  cohere2: LLAMA,
  // A Qwen3-Reranker's head, the LM head's "yes" and "no" rows, under Qwen3ForSequenceClassification's name.
  qwen3: { ...LLAMA, global: { ...LLAMA.global, 'cls.output': 'score' } },
  gemma: LLAMA,
  gemma2: GEMMA2,
  gemma3: GEMMA2,
  phi3: FUSED_LLAMA,
  chatglm: FUSED_LLAMA,
  qwen2moe: MOE,
  qwen3moe: MOE,
  qwen3vlmoe: MOE,
  granitemoe: MOE,
  olmoe: MOE,
  gpt2: GPT2,
  // GPTBigCode: GPT-2's names, Linear weights (not transposed), an LM head of its own where untied.
  starcoder: { ...GPT2, global: { ...GPT2.global, output: 'lm_head' } },
  bert: {
    global: {
      token_embd: 'embeddings.word_embeddings',
      position_embd: 'embeddings.position_embeddings',
      token_types: 'embeddings.token_type_embeddings',
      token_embd_norm: 'embeddings.LayerNorm',
      // A reranker's head, BERT's pooler and classifier (RoBERTa's dense and out_proj compute the same).
      cls: 'pooler.dense',
      'cls.output': 'classifier',
    },
    block: (n) => `encoder.layer.${n}.`,
    layer: {
      attn_q: 'attention.self.query',
      attn_k: 'attention.self.key',
      attn_v: 'attention.self.value',
      attn_output: 'attention.output.dense',
      attn_output_norm: 'attention.output.LayerNorm',
      ffn_up: 'intermediate.dense',
      ffn_down: 'output.dense',
      layer_output_norm: 'output.LayerNorm',
    },
  },
  // NomicBertModel's checkpoint names (fc11: the up projection, fc12: the gate; llama.cpp's ffn_up, ffn_gate).
  'nomic-bert': {
    global: {
      token_embd: 'embeddings.word_embeddings',
      token_types: 'embeddings.token_type_embeddings',
      token_embd_norm: 'emb_ln',
    },
    block: (n) => `encoder.layers.${n}.`,
    layer: {
      attn_qkv: 'attn.Wqkv',
      attn_output: 'attn.out_proj',
      attn_output_norm: 'norm1',
      ffn_up: 'mlp.fc11',
      ffn_gate: 'mlp.fc12',
      ffn_down: 'mlp.fc2',
      layer_output_norm: 'norm2',
    },
  },
};

/** llama.cpp tensors that are not weights of the transformers model (RoPE factors become config). */
export const CONFIG_TENSORS = new Set(['rope_freqs.weight', 'rope_factors_long.weight', 'rope_factors_short.weight']);

/** GPT-2 ties its LM head to wte; llama.cpp's converter stores a copy as output.weight, which pagoda does not load. */
const DROPPED: Record<string, ReadonlySet<string>> = { gpt2: new Set(['output.weight']) };

export interface MappedName {
  /** The transformers name (for experts: the prefix before `.E.gate_proj.weight`). */
  name: string;
  change: TensorChange | null;
}

/** The architectures whose norm weights llama.cpp's converter stores as 1 + w (Gemma's; Nemotron's layernorm1p). */
const NORM_PLUS_ONE = new Set(['gemma', 'gemma2', 'gemma3', 'nemotron']);
/** The architectures llama.cpp's converter writes through its Llama class, which interleaves q/k rows for RoPE. */
const ROPE_PERMUTED = new Set(['llama', 'mistral3', 'granite', 'granitemoe', 'internlm2', 'smollm3', 'arcee']);
const CONV1D = new Set(['attn_qkv', 'attn_output', 'ffn_up', 'ffn_down']);

/** What llama.cpp's converter did to a tensor of this block part (before the name mapping). */
function changeOf(arch: string, part: string, suffix: string): TensorChange | null {
  if (ROPE_PERMUTED.has(arch) && suffix === 'weight' && (part === 'attn_q' || part === 'attn_k')) {
    return { kind: 'rope-rows', heads: part === 'attn_q' ? 'q' : 'kv' };
  }
  if (NORM_PLUS_ONE.has(arch) && part.endsWith('norm') && suffix === 'weight') return { kind: 'norm-plus-one' };
  if (arch === 'gpt2' && suffix === 'weight' && CONV1D.has(part)) return { kind: 'transposed' };
  const exps = /^ffn_(gate|up|down)_exps$/.exec(part);
  if (exps) return { kind: 'experts', part: expertPartsOf(arch)[exps[1] as keyof ExpertParts] };
  return null;
}

/**
 * A llama.cpp tensor name → the transformers name and the change to undo; null for a tensor the model does not
 * load by name (RoPE factors, GPT-2's copy of wte) or that this architecture does not know.
 */
export function hfTensorName(arch: string, gguf: string): MappedName | null {
  const table = TABLES[arch];
  if (!table || CONFIG_TENSORS.has(gguf) || DROPPED[arch]?.has(gguf)) return null;
  const m = /^(?:blk\.(\d+)\.)?(.+)\.(weight|bias)$/.exec(gguf);
  if (!m) return null;
  const [, block, part, suffix] = m as unknown as [string, string | undefined, string, string];
  const hf = block === undefined ? table.global[part] : table.layer[part];
  if (!hf) return null;
  const change = block === undefined && part !== 'output_norm' ? null : changeOf(arch, part, suffix);
  const prefix = block === undefined ? '' : table.block(Number(block));
  if (change?.kind === 'experts') return { name: `${prefix}${hf}`, change };
  return { name: `${prefix}${hf}.${suffix}`, change };
}

/** The llama.cpp name of a transformers tensor (for `pagoda convert`), or null when llama.cpp has none. */
export function ggufTensorName(arch: string, hf: string): string | null {
  const table = TABLES[arch];
  if (!table) return null;
  const m = /^(.+)\.(weight|bias)$/.exec(hf);
  if (!m) return null;
  const [, base, suffix] = m as unknown as [string, string, string];
  for (const [g, h] of Object.entries(table.global)) if (h === base) return `${g}.${suffix}`;
  const block = /^(.*?)(\d+)\.(.+)$/.exec(base);
  if (!block) return null;
  const n = Number(block[2]);
  if (table.block(n) !== `${block[1]}${n}.`) return null;
  for (const [g, h] of Object.entries(table.layer)) if (h === block[3]) return `blk.${n}.${g}.${suffix}`;
  return null;
}
