import type {
  Activation,
  AttentionSpec,
  DType,
  GatedActivation,
  HostTensor,
  LayerKvCache,
  PoolingMode,
  ScaleFactorIn,
  StepContext,
  Tensor,
} from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import type { CpuTensor } from '../../src/backend/cpu/tensor.ts';
import { decodeFrom } from '../../src/backend/cuda/tensor.ts';
import type { HeadNorm, RopeSpec } from '../../src/backend/rope-spec.ts';
import { encodeAs } from '../../src/primitives/float-bits.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { mulberry32 } from '../../src/util/random.ts';

/**
 * The places where a low-precision forward stores a value in bf16/fp16, named by what the value is:
 * - `weights`: every weight as loaded; `embedding`: the looked-up rows alone (the embedding table's share of
 *   `weights`; a lookup from a rounded table is exact), and Gemma's scaled embeddings (the factor and the product);
 * - `norm`: the layers' input/post-attention norm outputs (GPT-2's ln_1/ln_2); `qk_norm`: Qwen3's per-head q/k norms;
 * - `qkv`, `o_proj`, `gate_up` (GPT-2's c_fc), `down`: the projections' outputs; `logits`: the lm_head output (the
 *   device's gated decode GEMV keeps gate_up in float: rounding it here bounds decode from above);
 * - `pre_bias`: a biased projection's GEMM output before the bias is added (cuBLASLt adds it in a second kernel; rows
 *   the GEMV takes add it in its epilogue, rounding once, so for them this point is a bound from above);
 * - `rope`: q and k after the rotation; `attention`: the attention output; `activation`: actMul / gelu output;
 * - `add`: `Backend.add`'s output (Llama's final residual, GPT-2's whole residual stream); `final_norm`: the last norm;
 * - `fused_residual`: the residual stream leaving `addRmsNorm` (float on our device, bf16 in vLLM).
 */
export const ROUNDING_POINTS = [
  'weights',
  'embedding',
  'norm',
  'qkv',
  'pre_bias',
  'qk_norm',
  'rope',
  'attention',
  'o_proj',
  'gate_up',
  'activation',
  'down',
  'add',
  'final_norm',
  'logits',
  'fused_residual',
] as const;
export type RoundingPoint = (typeof ROUNDING_POINTS)[number];

/** What the CUDA backend rounds: everything but the residual stream, which its addRmsNorm keeps in float. */
export const CUDA_ROUNDING: readonly RoundingPoint[] = ROUNDING_POINTS.filter((p) => p !== 'fused_residual');

/** Which rounding point an op's output belongs to, from the name of the weight it applies. */
function pointOfWeight(name: string, op: 'linear' | 'norm'): RoundingPoint | null {
  if (op === 'norm') {
    if (/q_norm|k_norm/.test(name)) return 'qk_norm';
    if (/(^|\.)(norm|ln_f)\.weight$/.test(name)) return 'final_norm';
    return /layernorm|ln_1|ln_2/.test(name) ? 'norm' : null;
  }
  if (/q_proj|k_proj|v_proj|qkv|c_attn/.test(name)) return 'qkv';
  if (/o_proj|attn\.c_proj/.test(name)) return 'o_proj';
  if (/gate_proj|up_proj|gate_up|c_fc/.test(name)) return 'gate_up';
  if (/down_proj|mlp\.c_proj/.test(name)) return 'down';
  // A tied lm_head is the embedding table.
  return /lm_head|embed_tokens|wte/.test(name) ? 'logits' : null;
}

/**
 * The CPU backend with a low-precision device's storage: weights and op outputs rounded to bf16 or fp16 at the
 * chosen rounding points (default: where the CUDA backend rounds), computing in float in between as the device's
 * kernels do. It tells how far from the float32 golden logits a faithful low-precision forward lands (on the tiny
 * random-weight fixtures itself more than 2 %), and which roundings that error comes from (bench/bf16-error.ts).
 * Ops whose weight it cannot name are always rounded.
 */
export class LowPrecisionCpu extends CpuBackend {
  private readonly rounded: ReadonlySet<RoundingPoint>;
  /** The rounding points the forwards so far have passed through (rounded or not). */
  readonly seen = new Set<RoundingPoint>();
  private readonly weightNames = new WeakMap<Tensor, string>();
  private readonly random: (() => number) | null;

  /**
   * `dither`: a seed; instead of rounding to nearest, each value not representable in `dtype` gets a random error
   * of the same size (uniform within half a unit in the last place), so runs with several seeds show the spread of
   * outcomes that rounding errors of that size give, of which round-to-nearest is one draw.
   */
  constructor(
    private readonly dtype: Exclude<DType, 'f32'>,
    rounded: Iterable<RoundingPoint> = CUDA_ROUNDING,
    opts: { dither?: number } = {},
  ) {
    super();
    this.rounded = new Set(rounded);
    this.random = opts.dither === undefined ? null : mulberry32(opts.dither);
  }

  private roundData(data: Float32Array): void {
    const nearest = decodeFrom(encodeAs(data, this.dtype), this.dtype);
    if (!this.random) {
      data.set(nearest);
      return;
    }
    const [mantissaBits, minExponent] = this.dtype === 'bf16' ? [7, -126] : [10, -14];
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      if (nearest[i] === x || !Number.isFinite(x)) continue;
      const ulp = 2 ** (Math.max(Math.floor(Math.log2(Math.abs(x))), minExponent) - mantissaBits);
      data[i] = x + (this.random() - 0.5) * ulp;
    }
  }

  /** Rounds t in place when `point` is rounded (null: an unnamed op, always rounded). */
  private round<T extends Tensor>(t: T, point: RoundingPoint | null): T {
    if (point !== null) this.seen.add(point);
    if (point === null || this.rounded.has(point)) this.roundData((t as unknown as CpuTensor).data);
    return t;
  }

  private pointOf(w: Tensor, op: 'linear' | 'norm'): RoundingPoint | null {
    const name = this.weightNames.get(w);
    return name === undefined ? null : pointOfWeight(name, op);
  }

  override loadWeight(w: HostTensor, opts?: { transpose?: boolean }): Tensor {
    this.seen.add('weights');
    let host = w;
    if (this.rounded.has('weights')) {
      const values = toFloat32(w).slice();
      this.roundData(values);
      host = { ...w, dtype: 'f32', bytes: new Uint8Array(values.buffer) };
    }
    const t = super.loadWeight(host, opts);
    this.weightNames.set(t, w.name);
    return t;
  }
  override embedding(table: Tensor, step: StepContext, index: 'tokens' | 'positions' | 'tokenTypes'): Tensor {
    // A lookup copies rows: from a rounded table they are exact already (and must not be dithered twice).
    const out = super.embedding(table, step, index);
    return this.rounded.has('weights') ? out : this.round(out, 'embedding');
  }
  override linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
    const point = this.pointOf(w, 'linear');
    if (!b) return this.round(super.linear(x, w), point);
    const y = super.linear(x, w);
    const data = (y as unknown as CpuTensor).data;
    this.seen.add('pre_bias');
    if ((point === null || this.rounded.has(point)) && this.rounded.has('pre_bias')) this.roundData(data);
    const bias = (b as unknown as CpuTensor).data;
    for (let i = 0; i < data.length; i++) data[i]! += bias[i % bias.length]!;
    return this.round(y, point);
  }
  override rmsNorm(x: Tensor, w: Tensor, eps: number, weightOffset?: number): Tensor {
    return this.round(super.rmsNorm(x, w, eps, weightOffset), this.pointOf(w, 'norm'));
  }
  override addRmsNorm(
    x: Tensor,
    residual: Tensor,
    w: Tensor,
    eps: number,
    weightOffset?: number,
    feeds?: Tensor,
    xNorm?: Tensor,
  ): { out: Tensor; residual: Tensor } {
    // x's own norm (xNorm) goes through rmsNorm above: rounded where the unfused norm's output is.
    const o = super.addRmsNorm(x, residual, w, eps, weightOffset, feeds, xNorm);
    return { out: this.round(o.out, this.pointOf(w, 'norm')), residual: this.round(o.residual, 'fused_residual') };
  }
  override layerNorm(x: Tensor, w: Tensor, b: Tensor, eps: number): Tensor {
    return this.round(super.layerNorm(x, w, b, eps), this.pointOf(w, 'norm'));
  }
  override add(a: Tensor, b: Tensor): Tensor {
    return this.round(super.add(a, b), 'add');
  }
  override rope(q: Tensor, k: Tensor, headDim: number, rope: RopeSpec, step: StepContext, norm?: HeadNorm): void {
    super.rope(q, k, headDim, rope, step, norm);
    this.round(q, 'rope');
    this.round(k, 'rope');
  }
  override actMul(x: Tensor, act: GatedActivation): Tensor {
    return this.round(super.actMul(x, act), 'activation');
  }
  /**
   * Gemma's scaled embeddings (and Granite's scaled branches): the factor in the storage type as the device rounds it
   * (unless it is kept in float), then the product.
   */
  override scale(x: Tensor, factor: number, factorIn: ScaleFactorIn = 'storage'): Tensor {
    const inStorage = decodeFrom(encodeAs(Float32Array.of(factor), this.dtype), this.dtype)[0]!;
    const rounded = factorIn === 'storage' && this.rounded.has('embedding');
    return this.round(super.scale(x, rounded ? inStorage : factor), 'embedding');
  }
  override softcap(x: Tensor, cap: number): Tensor {
    return this.round(super.softcap(x, cap), 'logits');
  }
  override activation(x: Tensor, act: Activation): Tensor {
    return this.round(super.activation(x, act), 'activation');
  }
  override attention(q: Tensor, cache: LayerKvCache, spec: AttentionSpec, step: StepContext): Tensor {
    return this.round(super.attention(q, cache, spec, step), 'attention');
  }
  override selfAttention(q: Tensor, k: Tensor, v: Tensor, spec: AttentionSpec, step: StepContext): Tensor {
    return this.round(super.selfAttention(q, k, v, spec, step), 'attention');
  }
  // Pooling heads store their outputs too (unnamed: always rounded).
  override pool(x: Tensor, step: StepContext, mode: PoolingMode): Tensor {
    return this.round(super.pool(x, step, mode), null);
  }
  override l2Normalize(x: Tensor): Tensor {
    return this.round(super.l2Normalize(x), null);
  }
  override tanh(x: Tensor): Tensor {
    return this.round(super.tanh(x), null);
  }
}
