import { UserError } from '../util/errors.ts';

/**
 * What the KV cache stores. auto/f32/f16/bf16 are float caches (on the GPU the cache takes the compute dtype, so they
 * pick --dtype); the quantized types are stored as such and dequantized where attention reads them:
 * fp8 — e4m3 with one scale per layer for K and one for V (1.0, or the checkpoint's k_scale/v_scale);
 * q8_0 / q4_0 — ggml's blocks of 32 values with a half scale each (Ollama's OLLAMA_KV_CACHE_TYPE names), blocks
 * running along each token's row of num_kv_heads × head_dim values.
 */
export const KV_CACHE_TYPES = ['auto', 'f32', 'f16', 'bf16', 'fp8', 'q8_0', 'q4_0'] as const;
export type KvCacheType = (typeof KV_CACHE_TYPES)[number];
export type KvQuant = 'fp8' | 'q8_0' | 'q4_0';

/** Stored bytes per value of each quantized type (a q8_0 block: 2 + 32 bytes; q4_0: 2 + 16). */
export const KV_QUANT_BYTES: Record<KvQuant, number> = { fp8: 1, q8_0: 34 / 32, q4_0: 18 / 32 };

/** Values per block of a block-quantized type (fp8 has none). */
export const KV_QUANT_BLOCK: Record<KvQuant, number> = { fp8: 1, q8_0: 32, q4_0: 32 };

export function isKvQuant(type: string | undefined): type is KvQuant {
  return type === 'fp8' || type === 'q8_0' || type === 'q4_0';
}

/** `value` (from flag or variable `from`) as a KV cache type, case-insensitive. */
export function parseKvCacheType(value: string, from: string): KvCacheType {
  const type = value.trim().toLowerCase();
  if (!(KV_CACHE_TYPES as readonly string[]).includes(type)) {
    throw new UserError(`${from}: "${value}" is not a KV cache type (expected one of ${KV_CACHE_TYPES.join(', ')})`);
  }
  return type as KvCacheType;
}

/** vLLM's `--kv-cache-dtype` names → pagoda's types (fp8_e5m2 has no cache here). */
const VLLM_KV_CACHE_DTYPES: Record<string, KvCacheType> = {
  auto: 'auto',
  fp8: 'fp8',
  fp8_e4m3: 'fp8',
  bfloat16: 'bf16',
  float16: 'f16',
  half: 'f16',
  float32: 'f32',
};

/**
 * `--kv-cache-type` and vLLM's `--kv-cache-dtype` (either, or both naming the same type) as one KV cache type;
 * undefined when neither is given.
 */
export function kvCacheTypeFlags(type: string | undefined, vllmDtype: string | undefined): KvCacheType | undefined {
  const own = type === undefined ? undefined : parseKvCacheType(type, '--kv-cache-type');
  if (vllmDtype === undefined) return own;
  const mapped = VLLM_KV_CACHE_DTYPES[vllmDtype.trim().toLowerCase()];
  if (mapped === undefined) {
    throw new UserError(
      `--kv-cache-dtype ${vllmDtype}: pagoda's KV cache takes ${Object.keys(VLLM_KV_CACHE_DTYPES).join(', ')} (or --kv-cache-type ${KV_CACHE_TYPES.join(', ')})`,
    );
  }
  if (own !== undefined && own !== mapped) {
    throw new UserError(`--kv-cache-dtype ${vllmDtype} and --kv-cache-type ${type} disagree: give one of them`);
  }
  return mapped;
}

/**
 * Why a model's cache cannot hold `quant`, or null: a block-quantized row (num_kv_heads × head_dim values per token)
 * must be whole blocks, as in llama.cpp.
 */
export function kvQuantMismatch(quant: KvQuant, numKvHeads: number, headDim: number): string | null {
  const row = numKvHeads * headDim;
  const block = KV_QUANT_BLOCK[quant];
  if (row % block === 0) return null;
  return `a ${quant} KV cache stores each token's ${numKvHeads} × ${headDim} = ${row} key values in blocks of ${block}, which ${row} is not a multiple of`;
}

/** Why one KV head's values (`headDim` of them) cannot be moved alone in a `quant` cache (SnapKV does), or null. */
export function kvHeadMismatch(quant: KvQuant, headDim: number): string | null {
  const block = KV_QUANT_BLOCK[quant];
  if (headDim % block === 0) return null;
  return `a ${quant} KV cache's blocks of ${block} values span heads of ${headDim}, so one head's keys cannot move alone`;
}
