import { UserError } from '../../util/errors.ts';
import type { QuantType } from '../ggml-types.ts';
import { codecOf } from './index.ts';

/**
 * A quantization as llama.cpp's `llama-quantize` names it (its "ftype"): one type for most weights, and for the
 * k-quant mixes per-tensor rules that give more bits where errors cost most (the LM head, attn_v, ffn_down, some
 * layers), re-expressed from llama.cpp's llama_tensor_get_type for the dense and mixture-of-experts models pagoda
 * runs.
 */
export interface QuantScheme {
  /** llama.cpp's spelling, upper case: "Q4_K_M". */
  readonly name: string;
  readonly base: QuantType;
  /** llama.cpp's `general.file_type` (LLAMA_FTYPE_MOSTLY_*) for a file quantized this way. */
  readonly fileType: number;
}

/** What a weight is, in llama.cpp's tensor terms, so a mix can choose its type. */
export interface WeightRole {
  readonly kind:
    | 'output'
    | 'token_embd'
    | 'attn_q'
    | 'attn_k'
    | 'attn_v'
    | 'attn_qkv'
    | 'attn_output'
    | 'ffn_gate'
    | 'ffn_up'
    | 'ffn_down';
  /** The layer (blocks) and how many there are, for the rules that favour the first and last layers. */
  readonly layer: number;
  readonly numLayers: number;
  /** Query heads per KV head. */
  readonly gqa: number;
  /** The model's experts per sparse layer (0 for a dense model): llama.cpp's rules single out eight. */
  readonly experts: number;
  /** Row width (values along the blocks). */
  readonly cols: number;
}

const SCHEMES: Record<string, [QuantType, number]> = {
  Q8_0: ['q8_0', 7],
  Q4_0: ['q4_0', 2],
  Q4_1: ['q4_1', 3],
  Q5_0: ['q5_0', 8],
  Q5_1: ['q5_1', 9],
  Q2_K: ['q2_k', 10],
  Q3_K_M: ['q3_k', 12],
  Q4_K_M: ['q4_k', 15],
  Q5_K_M: ['q5_k', 17],
  Q6_K: ['q6_k', 18],
};
/** llama-quantize's aliases: a bare k type means its _M mix. */
const ALIASES: Record<string, string> = { Q3_K: 'Q3_K_M', Q4_K: 'Q4_K_M', Q5_K: 'Q5_K_M' };

/** The GGUF scheme named `spelling` (case-insensitive); `what` names the flag or field in the one-line error. */
export function parseQuantization(spelling: string, what: string): QuantScheme {
  const upper = spelling.trim().toUpperCase();
  if (/^FP8|^F8/.test(upper)) {
    throw new UserError(`${what} ${spelling}: FP8 is not a GGUF type (expected one of ${knownQuantizations()})`);
  }
  const name = ALIASES[upper] ?? upper;
  const scheme = SCHEMES[name];
  if (!scheme)
    throw new UserError(`${what} ${spelling}: unknown quantization (expected one of ${knownQuantizations()})`);
  return { name, base: scheme[0], fileType: scheme[1] };
}

/** `--quantization fp8`: FP8 e4m3 weights at load; recognized so that it is refused in one line (runner/load.ts) until the GPU's FP8 GEMMs exist. */
export const FP8_QUANTIZATION = { name: 'FP8' } as const;

/** What `--quantization` names: a GGUF type or mix, or FP8. */
export type LoadQuantization = QuantScheme | typeof FP8_QUANTIZATION;

export function isFp8(q: LoadQuantization): q is typeof FP8_QUANTIZATION {
  return q === FP8_QUANTIZATION;
}

/** `--quantization`'s value: `fp8`, or a GGUF scheme as parseQuantization reads it. */
export function parseLoadQuantization(spelling: string, what: string): LoadQuantization {
  return spelling.trim().toLowerCase() === 'fp8' ? FP8_QUANTIZATION : parseQuantization(spelling, what);
}

/** A layer's matrices; an MoE layer's experts stacked (`_exps`) and its shared expert (`_shexp`) are FFN ones too. */
const GGUF_LAYER =
  /^blk\.(\d+)\.(attn_q|attn_k|attn_v|attn_qkv|attn_output|ffn_gate|ffn_up|ffn_down)(?:_exps|_shexp)?\.weight$/;

/**
 * What a tensor of a GGUF file (llama.cpp's names) is to a mix; null for tensors never quantized (norms, biases,
 * position embeddings, RoPE factors, routers). Without output.weight, token_embd is the LM head and takes its rule.
 */
export function ggufWeightRole(
  name: string,
  model: { cols: number; numLayers: number; gqa: number; experts: number; hasOutput: boolean },
): WeightRole | null {
  const base = { layer: 0, numLayers: model.numLayers, gqa: model.gqa, experts: model.experts, cols: model.cols };
  if (name === 'output.weight') return { ...base, kind: 'output' };
  if (name === 'token_embd.weight') return { ...base, kind: model.hasOutput ? 'token_embd' : 'output' };
  const m = GGUF_LAYER.exec(name);
  return m ? { ...base, kind: m[2] as WeightRole['kind'], layer: Number(m[1]) } : null;
}

export function knownQuantizations(): string {
  return [...Object.keys(SCHEMES), ...Object.keys(ALIASES)].map((k) => k.toLowerCase()).join(', ');
}

/** llama.cpp's use_more_bits (integer division): the first and last eighth of the layers, every third between. */
function moreBits(layer: number, n: number): boolean {
  const eighth = Math.trunc(n / 8);
  return layer < eighth || layer >= Math.trunc((7 * n) / 8) || (layer - eighth) % 3 === 2;
}

/**
 * The type a weight gets under `scheme`. A row width that is not a whole number of the type's blocks falls back as
 * llama.cpp does (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0); Q2_K and Q3_K fall back to Q4_0 where llama.cpp takes
 * IQ4_NL, a type pagoda does not implement. Null: the width fits no type at all (left unquantized).
 */
export function quantTypeFor(scheme: QuantScheme, role: WeightRole): QuantType | null {
  return fitWidth(chooseType(scheme, role), role.cols);
}

function chooseType(scheme: QuantScheme, r: WeightRole): QuantType {
  const s = scheme.name;
  const kMix = s === 'Q2_K' || s === 'Q3_K_M' || s === 'Q4_K_M' || s === 'Q5_K_M';
  // Mixtral-shaped models (eight experts) keep attention's k and v in Q8_0 whatever the scheme: ~128 MB on 8x7B.
  const eightExperts = r.experts === 8;
  if (r.kind === 'output') return scheme.base === 'q8_0' ? 'q8_0' : r.cols % 256 === 0 ? 'q6_k' : 'q8_0';
  if ((r.kind === 'attn_v' || r.kind === 'attn_k') && eightExperts) return 'q8_0';
  if (!kMix) return scheme.base;
  if (r.kind === 'attn_v') {
    if (s === 'Q2_K') return r.gqa >= 4 ? 'q4_k' : 'q3_k';
    if (s === 'Q3_K_M') return r.layer < 2 ? 'q5_k' : 'q4_k';
    return moreBits(r.layer, r.numLayers) ? 'q6_k' : scheme.base;
  }
  if (r.kind === 'ffn_down') {
    if (s === 'Q2_K') return 'q3_k';
    if (s === 'Q3_K_M') return r.layer < Math.trunc(r.numLayers / 16) ? 'q5_k' : 'q4_k';
    return moreBits(r.layer, r.numLayers) ? 'q6_k' : scheme.base;
  }
  if (r.kind === 'attn_output') {
    if (eightExperts) return s === 'Q5_K_M' ? scheme.base : 'q5_k';
    if (s === 'Q2_K') return 'q3_k';
    if (s === 'Q3_K_M') return 'q4_k';
  }
  return scheme.base;
}

const FALLBACK: Partial<Record<QuantType, QuantType>> = {
  q2_k: 'q4_0',
  q3_k: 'q4_0',
  q4_k: 'q5_0',
  q5_k: 'q5_1',
  q6_k: 'q8_0',
};

function fitWidth(type: QuantType, cols: number): QuantType | null {
  if (cols % codecOf(type).blockSize === 0) return type;
  const fallback = FALLBACK[type];
  return fallback && cols % codecOf(fallback).blockSize === 0 ? fallback : null;
}
