import type { QuantType } from '../../primitives/ggml-types.ts';
import type { DType, GatedActivation } from '../backend.ts';
import { PAGED_ATTENTION, simpleAttentionDefines, simpleSelfVariant } from './attention.ts';
import { ACT_MUL, ADD, ADD_BIAS, actDefines, addInputDefines } from './elementwise.ts';
import { EMBEDDING } from './embedding.ts';
import {
  ATTENTION_DTYPES,
  type AttentionDtype,
  decodeDefines,
  decodeWritesQ8,
  mergeDefines,
  prefillDefines,
  selfPrefillVariant,
} from './flash-attention.ts';
import {
  FLASH_PREFILL,
  FLASH_PREFILL_SM90A,
  HEAD_DIMS,
  PAGED_DECODE,
  PAGED_DECODE_MERGE,
  SM90A_HEAD_DIMS,
} from './flash-kernels.ts';
import { sm90aPrefillDefines } from './flash-prefill-sm90a.ts';
import { defaultConfigs } from './flash-sizing.ts';
import { FP8_QUANTIZE_ROWS } from './fp8.ts';
import {
  FP8_GEMV,
  FP8_GEMV_MAX_ROWS,
  type Fp8GemvChoice,
  fp8GemvDefines,
  fp8GemvRule,
  fp8RouteFor,
} from './fp8-gemv.ts';
import {
  fp8CudaCoreGemvRule,
  GEMV_MAX_ROWS,
  type GemvDevice,
  type GemvTable,
  gemvShape,
  gemvWins,
  pickGemvConfig,
} from './gemv-config.ts';
import type { KernelDecl } from './kernel.ts';
import { type CudaKvQuant, kvQuantDefines, tilesReadQuant } from './kv-layout.ts';
import { fp8CudaCoreGemvDefines, GEMV, GEMV_FP8, gemvDefines } from './linear.ts';
import type { Defines } from './modules.ts';
import {
  groupedGemmKernel,
  MMA_TILE_BUILDS,
  MOE_DOWN_COMBINE,
  MOE_GEMM_MMA,
  MOE_GEMV,
  moeGemvDefines,
  moeTakesGemv,
} from './moe.ts';
import { MOE_QUANT_DEQUANT } from './moe-quant.ts';
import { MOE_GEMV_MAX_TOKENS, MOE_ROUTE_GROUP } from './moe-routing.ts';
import { ADD_RMS_NORM, LAYER_NORM, normXDefines, offsetDefines, RMS_NORM, residualDefines } from './norm.ts';
import { POOL_ROWS } from './pooling.ts';
import { GEMV_ROPE, gemvRopeDefines } from './qkv-rope.ts';
import { QUANT_GEMM, QUANT_GEMM_TYPES } from './quant-gemm.ts';
import { QTYPE, QUANT_ACT_Q8, QUANT_DEQUANT } from './quant-kernels.ts';
import { quantGemvRoute } from './quant-tensor.ts';
import { QUANTIZE_AND_CACHE, RESHAPE_AND_CACHE, ROPE } from './rope.ts';
import { SAMPLE_ROWS } from './sampling.ts';
import { DTYPE_BYTES, DTYPE_DEFINE } from './tensor.ts';
import { CONVERT_WEIGHT } from './weight-convert.ts';
import { type XForm, xFormDefines } from './x-form.ts';

/** One module build: a `.cu` file with the defines KernelModules.get receives for it. */
export interface ModuleRequest {
  file: string;
  defines: Defines;
}

/** What the plan needs to know of a model, all of it in its config (no weight read). */
export interface KernelPlanModel {
  /** Each attention shape: head size and query heads per KV head. */
  attention: { headDim: number; group: number }[];
  /**
   * The linear layers of a decode step: `m` outputs (gated: half the packed gate/up's rows), `k` inputs; `fp8`: stored
   * as FP8 (--quantization fp8, an FP8 checkpoint kept so), read by kernels/fp8_gemv.cu instead of the GEMV.
   */
  linears: { m: number; k: number; gated: boolean; fp8?: boolean }[];
  /**
   * The packed q/k/v projection whose decode GEMV also applies RoPE and writes the cache (gemv.cu's ROPE build,
   * qkv-rope.ts): a model with RoPE, a KV cache, no per-head q/k norm, 16-bit q/k/v weights and a 16-bit cache.
   */
  qkvRope?: { m: number; k: number };
  /** The gated MLP's activation; null: no gated product (BERT's GELU runs in elementwise.cu's plain build). */
  act: GatedActivation | null;
  /** RMSNorm (with the residual-add builds) or LayerNorm (norm.cu's plain build, as BERT's encoders). */
  norm: 'rms' | 'layer';
  /** Rotary positions (false: learned position embeddings, gathered by the embedding kernel). */
  rope: boolean;
  /**
   * An embedding or reranking model: attention over each sequence's own rows of the step with no KV cache (causal for
   * decoder embedders, not for encoders), then pooling; no cache write, decode attention or sampling.
   */
  selfAttention?: { causal: boolean };
  /** The norms' weight offset (Gemma's 1 + w), 0 for most. */
  normOffset: number;
  /**
   * Gemma 2/3's sandwich norms: every residual add first normalizes its input (add_rms_norm's NORM_X builds, in place
   * of the plain ones).
   */
  sandwichNorms: boolean;
  /**
   * The most rows a decode-sized step's linears see (--max-num-seqs; a pooling model's smallest steps, up to
   * --max-num-batched-tokens): GEMV builds up to that many.
   */
  maxDecodeRows: number;
  /** The block types of the quantized matrices (GGUF, or quantized at load): one kernels/quant.cu module each. */
  quantTypes: readonly QuantType[];
  /** The KV cache's quantized storage (--kv-cache-type fp8 | q8_0); absent: the compute dtype. */
  kvQuant?: CudaKvQuant;
  /** The sparse MLPs (moe.ts): hidden size and each expert's width; absent: a dense model. */
  moe?: { hidden: number; expertWidth: number };
}

/** What the plan needs to know of the backend: its storage type and the GEMV choices for its card. */
export interface KernelPlanBackend {
  dtype: DType;
  device: GemvDevice;
  gemvTable: GemvTable;
  gemv: boolean;
  /** The GEMV FP8 weights' decode rows take (CudaLinear.fp8Gemv); none: the FP8 GEMM. */
  fp8Gemv?: Fp8GemvChoice | null;
  /** Prefill goes through the sm_90a kernel where it covers the call (PAGODA_PREFILL_KERNEL=wgmma on compute 9.0). */
  sm90aPrefill?: boolean;
}

/**
 * The kernel modules a model will ask for, built with the launchers' own define functions so each request is the very
 * module the launcher later gets: the per-file kernels (embedding, norms, RoPE and the KV cache write, elementwise
 * ops, sampling, weight conversion), attention for each head size, the decode GEMV for each linear shape and row
 * count where it beats cuBLASLt, and the quantized matrices' kernels per block type. An embedding model's instead:
 * the no-cache attention builds, LayerNorm where it has it, and pooling, with no cache write, decode or sampling.
 * Anything missed compiles on first use, as before.
 */
export function kernelPlan(b: KernelPlanBackend, m: KernelPlanModel): ModuleRequest[] {
  const out = new Map<string, ModuleRequest>();
  const add = (decl: KernelDecl, defines: Defines, withDtype = true) => {
    const d = withDtype ? { PAGODA_DTYPE: DTYPE_DEFINE[b.dtype], ...defines } : defines;
    const key = `${decl.file}|${JSON.stringify(Object.entries(d).sort(([x], [y]) => x.localeCompare(y)))}`;
    out.set(key, { file: decl.file, defines: d });
  };
  // The weight conversion first: a checkpoint stored in another dtype needs it while it loads.
  for (const decl of [CONVERT_WEIGHT, EMBEDDING]) add(decl, {});
  if (m.rope) add(ROPE, {});
  if (m.selfAttention) add(POOL_ROWS, {});
  // A quantized cache is written by its own build after RoPE (rope.ts ropeWriteKv).
  else if (m.kvQuant) add(QUANTIZE_AND_CACHE, kvQuantDefines(m.kvQuant));
  else add(RESHAPE_AND_CACHE, {});
  if (!m.selfAttention) add(SAMPLE_ROWS, {});
  const fp8 = m.linears.some((l) => l.fp8);
  // FP8 weights: quantized at load and x per token (fp8_quantize_rows), the GEMM's epilogue (fp8_scale_rows).
  if (fp8) add(FP8_QUANTIZE_ROWS, {});
  // Every quant.cu kernel of a type (dummy blocks while loading, GEMV, dequantization, gather) is in its one module.
  for (const t of m.quantTypes) add(QUANT_DEQUANT, { QTYPE: QTYPE[t] });
  // 16-bit compute: the fused GEMM's module per type it decodes (quant_gemm.cu, every row tile in one build).
  if (b.dtype !== 'f32')
    for (const t of m.quantTypes) if (QUANT_GEMM_TYPES.includes(t)) add(QUANT_GEMM[16], { QTYPE: QTYPE[t] });
  // The integer GEMV's x: quantized by the norms, the gated product and decode attention before it (x-form.ts), else
  // by its own launch (prefill attention's output).
  const integerRoute = m.quantTypes.length > 0 && quantGemvRoute(b.dtype) === 'q8';
  if (integerRoute) add(QUANT_ACT_Q8, {});
  add(ADD_BIAS, {});
  // The residual: the embeddings in the storage type, then RMSNorm models' float stream (add_rms_norm); LayerNorm
  // models add in the storage type. Where the two read alike (float32 storage) the defines, and so the module, agree.
  const residuals: DType[] = m.norm === 'layer' ? [b.dtype] : [b.dtype, 'f32'];
  for (const r of residuals) add(ADD, addInputDefines(r, b.dtype));
  // The producers' builds that also write x as the linear they feed reads it (q8 groups, or e4m3 for FP8 weights).
  const forms: (XForm | null)[] = [null, ...(integerRoute ? ['q8' as const] : []), ...(fp8 ? ['e4m3' as const] : [])];
  for (const form of forms) {
    if (m.act) add(ACT_MUL, { ...actDefines(m.act), ...xFormDefines(form) });
    if (m.norm === 'layer') continue;
    const norm = { ...offsetDefines(m.normOffset), ...xFormDefines(form) };
    add(RMS_NORM, norm);
    const normX = normXDefines(m.sandwichNorms);
    for (const r of residuals) add(ADD_RMS_NORM, { ...residualDefines(r, b.dtype), ...normX, ...norm });
  }
  if (m.norm === 'layer') add(LAYER_NORM, {});
  if (m.selfAttention) planSelfAttention(b.dtype, m.attention, m.selfAttention.causal, add);
  const quant = m.kvQuant;
  for (const { headDim, group } of m.selfAttention ? [] : m.attention) {
    const flash =
      ATTENTION_DTYPES.includes(b.dtype as AttentionDtype) &&
      (HEAD_DIMS as readonly number[]).includes(headDim) &&
      tilesReadQuant(quant, headDim);
    if (!flash) {
      add(PAGED_ATTENTION, simpleAttentionDefines(headDim, group, {}, quant));
      continue;
    }
    const dtype = b.dtype as AttentionDtype;
    const hd = headDim as (typeof HEAD_DIMS)[number];
    const cfg = defaultConfigs(headDim, quant);
    add(FLASH_PREFILL[hd], prefillDefines(dtype, headDim, cfg.prefill, {}, quant), false);
    // The sm_90a kernel reads 16-bit caches only (sm90aCovers).
    if (b.sm90aPrefill && !quant && (SM90A_HEAD_DIMS as readonly number[]).includes(headDim)) {
      add(FLASH_PREFILL_SM90A[headDim as (typeof SM90A_HEAD_DIMS)[number]], sm90aPrefillDefines(dtype, headDim), false);
    }
    // The decode kernels that also write O as q8 groups for o_proj on the integer GEMV (x-form.ts).
    for (const form of integerRoute && decodeWritesQ8(headDim) ? [null, 'q8' as const] : [null]) {
      add(PAGED_DECODE[hd], decodeDefines(dtype, headDim, cfg.decode, quant, form), false);
      add(PAGED_DECODE_MERGE, mergeDefines(dtype, form), false);
    }
  }
  if (b.gemv) {
    for (let T = 1; T < 2 * m.maxDecodeRows && T <= GEMV_MAX_ROWS; T *= 2) {
      for (const l of m.linears) {
        if (l.fp8) continue;
        const shape = gemvShape(T, l.m, l.k, l.gated);
        if ((l.k * DTYPE_BYTES[b.dtype]) % 16 !== 0 || !gemvWins(b.gemvTable, shape, b.device)) continue;
        add(GEMV, gemvDefines(shape, pickGemvConfig(b.gemvTable, shape, b.device), m.act ?? undefined));
      }
      // The q/k/v GEMV's ROPE build where the plain one runs (CudaQkvRope.fuses), with its configuration.
      const qkv = m.qkvRope && gemvShape(T, m.qkvRope.m, m.qkvRope.k, false);
      if (qkv && (qkv.k * DTYPE_BYTES[b.dtype]) % 16 === 0 && gemvWins(b.gemvTable, qkv, b.device))
        add(GEMV_ROPE, gemvRopeDefines(qkv, pickGemvConfig(b.gemvTable, qkv, b.device)));
    }
  }
  const fp8Buckets: number[] = [];
  for (let T = 1; T < 2 * m.maxDecodeRows && T <= FP8_GEMV_MAX_ROWS; T *= 2) fp8Buckets.push(T);
  const routes = new Set(b.fp8Gemv ? fp8Buckets.map((T) => fp8RouteFor(T, b.fp8Gemv!)) : []);
  if (fp8 && routes.has('tensor-cores')) {
    // One build per gated-ness: the row count is an argument (fp8-gemv.ts).
    for (const gated of new Set(m.linears.filter((l) => l.fp8).map((l) => l.gated)))
      add(FP8_GEMV, fp8GemvDefines(fp8GemvRule(gated), gated, m.act ?? undefined));
  }
  if (fp8 && routes.has('cuda-cores')) {
    // gemv.cu's FP8 build per shape and row bucket the route takes, as CudaLinear.fp8CudaCoreLauncher picks it.
    for (const T of fp8Buckets.filter((T) => fp8RouteFor(T, b.fp8Gemv!) === 'cuda-cores')) {
      for (const l of m.linears.filter((l) => l.fp8)) {
        const shape = gemvShape(T, l.m, l.k, l.gated);
        add(GEMV_FP8, fp8CudaCoreGemvDefines(shape, fp8CudaCoreGemvRule(shape), m.act ?? undefined));
      }
    }
  }
  if (m.moe) planMoe(b.dtype, m.moe, m.maxDecodeRows, m.quantTypes, add);
  return [...out.values()];
}

/**
 * An embedding model's attention (CudaAttention.selfAttention): the flash prefill kernel's no-cache build where its
 * tiles take the head size, else the simple kernel's; never the sm_90a kernel, which reads a paged cache.
 */
function planSelfAttention(
  dtype: DType,
  attention: KernelPlanModel['attention'],
  causal: boolean,
  add: (decl: KernelDecl, defines: Defines, withDtype?: boolean) => void,
): void {
  for (const { headDim, group } of attention) {
    if (ATTENTION_DTYPES.includes(dtype as AttentionDtype) && (HEAD_DIMS as readonly number[]).includes(headDim)) {
      const cfg = defaultConfigs(headDim).prefill;
      const variant = selfPrefillVariant(causal);
      add(
        FLASH_PREFILL[headDim as (typeof HEAD_DIMS)[number]],
        prefillDefines(dtype as AttentionDtype, headDim, cfg, variant),
        false,
      );
    } else add(PAGED_ATTENTION, simpleAttentionDefines(headDim, group, simpleSelfVariant(causal)));
  }
}

/**
 * A sparse MLP's modules (moe.ts): kernels/moe.cu (router, routing, grouping, the tile GEMM, the combine), moe_gemv per
 * decode token bucket (TMAX), the tensor-core grouped GEMM's two tile builds where it takes the rows past a decode
 * step, the SiLU product between the grouped GEMMs, and for experts kept in blocks kernels/moe_quant.cu per block
 * type (every build in one module; the model's other quantized matrices' types too, which the plan cannot tell apart).
 */
function planMoe(
  dtype: DType,
  { hidden: H, expertWidth: I }: { hidden: number; expertWidth: number },
  maxDecodeRows: number,
  quantTypes: readonly QuantType[],
  add: (decl: KernelDecl, defines: Defines) => void,
): void {
  add(MOE_ROUTE_GROUP, {});
  for (const t of quantTypes) add(MOE_QUANT_DEQUANT, { QTYPE: QTYPE[t] });
  for (let T = 1; T < 2 * maxDecodeRows && T <= MOE_GEMV_MAX_TOKENS; T *= 2) {
    if (!moeTakesGemv(dtype, T, H, I)) continue;
    add(MOE_GEMV, moeGemvDefines(dtype, T, H, true));
    add(MOE_DOWN_COMBINE, moeGemvDefines(dtype, T, I, false));
  }
  for (const k of [H, I]) {
    const gemm = groupedGemmKernel(dtype, k);
    if (gemm === MOE_GEMM_MMA) for (const build of MMA_TILE_BUILDS) add(gemm, build);
    else add(gemm, {});
  }
  add(ACT_MUL, actDefines('silu'));
}
