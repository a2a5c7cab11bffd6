import type { HostTensor } from '../backend/backend.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import { isQuantType } from '../primitives/ggml-types.ts';
import { toFloat32 } from '../primitives/host-tensor.ts';
import { quantize } from '../primitives/quant/index.ts';
import { type QuantScheme, quantTypeFor, type WeightRole } from '../primitives/quant/mix.ts';
import { randomBlocks } from '../primitives/quant/random.ts';

const LAYER = /(?:^|\.)layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.weight$/;
const KINDS: Record<string, WeightRole['kind']> = {
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
};

/**
 * What a Llama-family weight (Hugging Face names) is in llama.cpp's terms; null for weights a mix never quantizes
 * (norms, biases, and the weights of other families). Tied embeddings are the LM head, so they take its rule, as
 * llama.cpp gives token_embd the output's type when a file has no output.weight.
 */
export function hfWeightRole(name: string, cols: number, cfg: ModelConfig, tied: boolean): WeightRole | null {
  const base = { layer: 0, numLayers: cfg.numLayers, gqa: cfg.numHeads / cfg.numKvHeads, cols };
  if (/(?:^|\.)lm_head\.weight$/.test(name)) return { ...base, kind: 'output' };
  if (/(?:^|\.)embed_tokens\.weight$/.test(name)) return { ...base, kind: tied ? 'output' : 'token_embd' };
  const m = LAYER.exec(name);
  return m ? { ...base, kind: KINDS[m[2]!]!, layer: Number(m[1]) } : null;
}

/**
 * `--quantization`: a hook for ModelWeights that turns each float matrix of a checkpoint into the blocks `scheme`
 * gives it; a dummy tensor (no bytes) becomes random blocks of that type. Other tensors pass through unchanged.
 */
export function quantizeAtLoad(
  scheme: QuantScheme,
  cfg: ModelConfig,
  hasLmHead: boolean,
): (h: HostTensor) => HostTensor {
  let seed = 1;
  return (h) => {
    if (h.shape.length !== 2 || isQuantType(h.dtype)) return h;
    const [rows, cols] = h.shape as [number, number];
    const role = hfWeightRole(h.name, cols, cfg, cfg.tieWordEmbeddings && !hasLmHead);
    const type = role && quantTypeFor(scheme, role);
    if (!type) return h;
    const bytes =
      h.bytes.byteLength > 0
        ? quantize(type, toFloat32(h), h.name)
        : randomBlocks(type, rows * cols, 1 / Math.sqrt(cols), seed++, h.name);
    return { ...h, dtype: type, bytes };
  };
}
