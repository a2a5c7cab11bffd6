import type { Backend, HostTensor } from '../backend/backend.ts';
import { expertCountOf, type ModelConfig } from '../loader/hf-config.ts';
import { isQuantType } from '../primitives/ggml-types.ts';
import { toFloat32 } from '../primitives/host-tensor.ts';
import { quantize } from '../primitives/quant/index.ts';
import {
  isFp8,
  type LoadQuantization,
  type QuantScheme,
  quantTypeFor,
  type WeightRole,
} from '../primitives/quant/mix.ts';
import { randomBlocks } from '../primitives/quant/random.ts';
import { UserError } from '../util/errors.ts';

/**
 * A decoder layer's matrix: attention (q/k/v/o, or Phi-3's packed qkv) and the dense MLP (gate/up/down, or Phi-3's
 * packed gate_up).
 */
const LAYER = /(?:^|\.)layers\.(\d+)\.(?:self_attn\.(q|k|v|o|qkv)_proj|mlp\.(gate|up|down|gate_up)_proj)\.weight$/;
/**
 * A mixture-of-experts layer's routed experts, in every layout loadMoeBlock reads: one tensor per expert and
 * projection (Qwen's and OLMoE's names, Mixtral's w1/w3/w2), transformers 5's fused `[E, 2I, H]` / `[E, H, I]`, Granite's
 * fused input/output linears.
 */
const EXPERTS =
  /(?:^|\.)layers\.(\d+)\.(?:(?:mlp|block_sparse_moe)\.experts\.\d+\.(gate_proj|up_proj|down_proj|w1|w3|w2)\.weight|mlp\.experts\.(gate_up_proj|down_proj)|block_sparse_moe\.(input|output)_linear\.weight)$/;
/** Its shared expert (Qwen2-MoE's projections, GraniteMoeShared's fused linears): plain matrices. */
const SHARED =
  /(?:^|\.)layers\.(\d+)\.(?:mlp\.shared_expert\.(gate|up|down)_proj|shared_mlp\.(input|output)_linear)\.weight$/;
const KINDS: Record<string, WeightRole['kind']> = {
  q: 'attn_q',
  k: 'attn_k',
  v: 'attn_v',
  o: 'attn_output',
  qkv: 'attn_qkv',
  gate: 'ffn_gate',
  up: 'ffn_up',
  down: 'ffn_down',
  // llama.cpp stores Phi-3's packed gate and up as one ffn_up; fused experts' gate and up take its type too.
  gate_up: 'ffn_up',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
  gate_up_proj: 'ffn_up',
  w1: 'ffn_gate',
  w3: 'ffn_up',
  w2: 'ffn_down',
  input: 'ffn_up',
  output: 'ffn_down',
};

/** Whether `name` is a routed expert's matrix (or a stack of them): never FP8 (fp8AtLoad). */
export function isRoutedExpert(name: string): boolean {
  return EXPERTS.test(name);
}

/**
 * What a decoder weight (Hugging Face names) is in llama.cpp's terms; null for weights left as stored (norms, biases,
 * routers). Tied embeddings are the LM head, so they take its rule, as llama.cpp gives token_embd
 * the output's type when a file has no output.weight.
 */
export function hfWeightRole(name: string, cols: number, cfg: ModelConfig, tied: boolean): WeightRole | null {
  const base = {
    layer: 0,
    numLayers: cfg.numLayers,
    gqa: cfg.numHeads / cfg.numKvHeads,
    experts: expertCountOf(cfg),
    cols,
  };
  if (/(?:^|\.)lm_head\.weight$/.test(name)) return { ...base, kind: 'output' };
  if (/(?:^|\.)embed_tokens\.weight$/.test(name)) return { ...base, kind: tied ? 'output' : 'token_embd' };
  const m = LAYER.exec(name) ?? EXPERTS.exec(name) ?? SHARED.exec(name);
  return m ? { ...base, kind: KINDS[m[2] ?? m[3] ?? m[4]!]!, layer: Number(m[1]) } : null;
}

/**
 * A ModelWeights hook on each stored tensor as it loads; `name` is the model's name for it (the Llama stack's where a
 * family stores it under its own: `ModelWeights.renamed`), which decides its role.
 */
export type LoadHook<T> = (h: HostTensor, name?: string) => T;

/**
 * `--quantization`: a hook for ModelWeights that turns each float matrix of a checkpoint into the blocks `scheme`
 * gives it; a dummy tensor (no bytes) becomes random blocks of that type, made here, or on CUDA left without bytes
 * for the backend to make (on the device: an 8B model's take the host ~50 s). Routed experts' matrices (2-D per
 * expert, or stacked `[E, rows, cols]`) are quantized too: both backends keep expert stacks in blocks. Other tensors
 * pass through unchanged.
 */
export function quantizeAtLoad(
  scheme: QuantScheme,
  cfg: ModelConfig,
  hasLmHead: boolean,
  backend: Backend['name'],
): LoadHook<HostTensor> {
  refuseUnquantized(scheme.name, cfg);
  let seed = 1;
  return (h, name = h.name) => {
    if (isQuantType(h.dtype)) return h;
    // A 2-D matrix goes to blocks, and so does a stack of routed experts (both backends keep stacks in blocks).
    if (h.shape.length !== 2 && !isRoutedExpert(name)) return h;
    const cols = h.shape.at(-1)!;
    const role = hfWeightRole(name, cols, cfg, cfg.tieWordEmbeddings && !hasLmHead);
    const type = role && quantTypeFor(scheme, role);
    if (!type) return h;
    if (h.bytes.byteLength === 0 && backend === 'cuda') return { ...h, dtype: type };
    const count = h.shape.reduce((a, d) => a * d, 1);
    const bytes =
      h.bytes.byteLength > 0
        ? quantize(type, toFloat32(h), h.name)
        : randomBlocks(type, count, 1 / Math.sqrt(cols), seed++, h.name);
    return { ...h, dtype: type, bytes };
  };
}

/**
 * The families whose matrices are not quantized at load: GPT-2 stores them as Conv1D [in, out], transposed as they
 * load (blocks and row scales would run along inputs); GPTBigCode's names have no roles here yet. Refused rather
 * than left in float.
 */
const NOT_QUANTIZED: Record<string, string> = {
  gpt2: "GPT-2's weights (Conv1D, stored transposed)",
  gpt_bigcode: "GPTBigCode's weights",
};

function refuseUnquantized(scheme: string, cfg: ModelConfig): void {
  const why = NOT_QUANTIZED[cfg.modelType];
  if (why) throw new UserError(`--quantization ${scheme.toLowerCase()}: ${why} are not quantized yet`);
}

/**
 * `--quantization fp8`: whether ModelWeights asks the backend to quantize a stored tensor to FP8 as it loads
 * (`loadWeight`'s `quantize: 'fp8'`): the decoder layers' float matrices as `hfWeightRole` names them (q/k/v/o,
 * gate/up/down, packed or not). Embeddings, the LM head, norms, biases and mixture-of-experts weights stay 16-bit, as
 * vLLM's dynamic fp8 keeps them.
 */
export function fp8AtLoad(cfg: ModelConfig): LoadHook<boolean> {
  refuseUnquantized('fp8', cfg);
  return (h, name = h.name) => {
    if (h.shape.length !== 2 || (h.dtype !== 'f32' && h.dtype !== 'f16' && h.dtype !== 'bf16')) return false;
    if (isRoutedExpert(name) || SHARED.test(name)) return false;
    const kind = hfWeightRole(name, h.shape[1]!, cfg, false)?.kind;
    return kind !== undefined && kind !== 'output' && kind !== 'token_embd';
  };
}

/** `--quantization`'s hooks for ModelWeights: GGUF blocks made on the host (`convert`), or FP8 made by the backend. */
export function loadHooks(
  q: LoadQuantization | undefined,
  cfg: ModelConfig,
  hasLmHead: boolean,
  backend: Backend['name'],
): { convert?: LoadHook<HostTensor>; fp8?: LoadHook<boolean> } {
  if (!q) return {};
  return isFp8(q) ? { fp8: fp8AtLoad(cfg) } : { convert: quantizeAtLoad(q, cfg, hasLmHead, backend) };
}
