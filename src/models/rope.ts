import type { RopeSpec } from '../backend/rope-spec.ts';
import type { ModelConfig, RopeScaling } from '../loader/hf-config.ts';
import { UserError } from '../util/errors.ts';

/** 1 / theta^(2i / dim) for i < dim / 2 (in f32, as HF computes it). */
export function defaultInvFreq(theta: number, dim: number): Float32Array {
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) out[i] = 1 / theta ** Math.fround((2 * i) / dim);
  return out;
}

function num(s: RopeScaling, key: string, fallback?: number): number {
  const v = s[key];
  if (typeof v === 'number') return v;
  if (fallback !== undefined) return fallback;
  throw new UserError(`config.json: rope scaling "${s.type}" needs a numeric "${key}"`);
}

/** Llama 3.1: low frequencies divided by `factor`, high ones kept, a smooth blend in between. */
function llama3(inv: Float32Array, s: RopeScaling): Float32Array {
  const factor = num(s, 'factor');
  const low = num(s, 'low_freq_factor');
  const high = num(s, 'high_freq_factor');
  const oldLen = num(s, 'original_max_position_embeddings');
  const lowWavelen = oldLen / low;
  const highWavelen = oldLen / high;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / factor;
    const smooth = (oldLen / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/**
 * YaRN: interpolate low frequencies, extrapolate high ones, a linear ramp between; returns the attention factor.
 * `factor` is used as given (transformers since #40320, vLLM); `original_max_position_embeddings` sets the ramp.
 */
function yarn(theta: number, dim: number, s: RopeScaling, maxPos: number): { invFreq: Float32Array; mscale: number } {
  const factor = num(s, 'factor');
  const origMax = num(s, 'original_max_position_embeddings', maxPos);
  const betaFast = num(s, 'beta_fast', 32);
  const betaSlow = num(s, 'beta_slow', 1);
  const getMscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  let mscale: number;
  if (typeof s.attention_factor === 'number') mscale = s.attention_factor;
  else if (typeof s.mscale === 'number' && typeof s.mscale_all_dim === 'number' && s.mscale && s.mscale_all_dim) {
    mscale = getMscale(factor, s.mscale) / getMscale(factor, s.mscale_all_dim);
  } else mscale = getMscale(factor);
  const correctionDim = (rotations: number) =>
    (dim * Math.log(origMax / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
  const truncate = s.truncate !== false;
  let lo = correctionDim(betaFast);
  let hi = correctionDim(betaSlow);
  if (truncate) {
    lo = Math.floor(lo);
    hi = Math.ceil(hi);
  }
  lo = Math.max(lo, 0);
  hi = Math.min(hi, dim - 1);
  if (lo === hi) hi += 0.001;
  const extrapolated = defaultInvFreq(theta, dim);
  const invFreq = extrapolated.map((f, i) => {
    const ramp = Math.min(1, Math.max(0, (i - lo) / (hi - lo)));
    const extrapolationWeight = 1 - ramp;
    return (f / factor) * (1 - extrapolationWeight) + f * extrapolationWeight;
  });
  return { invFreq, mscale };
}

/** 'su' is the name the first Phi-3 128k configs gave LongRoPE. */
const LONGROPE_TYPES = ['longrope', 'su'];

/** LongRoPE (Phi-3, Phi-4): which factor list applies and why, for the start-up log. */
export interface LongRopeChoice {
  factors: 'short' | 'long';
  originalMax: number;
  maxModelLen: number;
}

/** The trained length LongRoPE extends: in the rope settings (transformers 5) or at the config's top level (4.x). */
function longRopeOriginalMax(cfg: ModelConfig, s: RopeScaling): number {
  const v = s.original_max_position_embeddings ?? cfg.raw.original_max_position_embeddings;
  if (typeof v === 'number') return v;
  throw new UserError(`config.json: rope scaling "${s.type}" needs a numeric "original_max_position_embeddings"`);
}

/**
 * vLLM's rule: the long factors when the engine's max-model-len exceeds original_max_position_embeddings, the short
 * ones otherwise (a cache cannot switch factors mid-sequence as transformers' forward does). Null for other ropes.
 */
export function longRopeChoice(cfg: ModelConfig, maxModelLen = cfg.maxPositionEmbeddings): LongRopeChoice | null {
  const s = cfg.ropeScaling;
  if (!s || !LONGROPE_TYPES.includes(s.type)) return null;
  const originalMax = longRopeOriginalMax(cfg, s);
  return { factors: maxModelLen > originalMax ? 'long' : 'short', originalMax, maxModelLen };
}

/**
 * LongRoPE: each frequency divided by its own factor (short or long list, see longRopeChoice); the attention factor
 * sqrt(1 + ln(max / original) / ln(original)) from the config's lengths unless `attention_factor` is given.
 */
function longRope(cfg: ModelConfig, s: RopeScaling, dim: number, maxModelLen: number) {
  const choice = longRopeChoice(cfg, maxModelLen)!;
  const key = `${choice.factors}_factor`;
  const factors = s[key];
  if (!Array.isArray(factors) || factors.length !== dim / 2 || factors.some((f) => typeof f !== 'number')) {
    const found = Array.isArray(factors) ? `${factors.length} entries` : JSON.stringify(factors ?? null);
    throw new UserError(
      `config.json: rope scaling "${s.type}" needs "${key}" as ${dim / 2} numbers (rotary dim ${dim} / 2), found ${found}`,
    );
  }
  const invFreq = defaultInvFreq(cfg.ropeTheta, dim).map((f, i) => f / (factors[i] as number));
  const scale = cfg.maxPositionEmbeddings / choice.originalMax;
  const mscale =
    typeof s.attention_factor === 'number'
      ? s.attention_factor
      : scale <= 1
        ? 1
        : Math.sqrt(1 + Math.log(scale) / Math.log(choice.originalMax));
  return { invFreq, mscale };
}

/**
 * The rotary embedding for a model: inverse frequencies with the config's rope scaling folded in.
 * Supports default, linear, dynamic (NTK, fixed at load for the scaled maximum length), llama3, yarn and longrope
 * (its factors chosen by the engine's `maxModelLen`).
 */
export function ropeSpecFromConfig(
  cfg: ModelConfig,
  style: RopeSpec['style'] = 'neox',
  maxModelLen = cfg.maxPositionEmbeddings,
): RopeSpec {
  const rotaryDim = Math.floor(cfg.headDim * cfg.partialRotaryFactor);
  const theta = cfg.ropeTheta;
  const s = cfg.ropeScaling;
  const factors = cfg.ropeFreqFactors;
  if (factors && factors.length !== rotaryDim / 2) {
    throw new UserError(`rope_freqs: ${factors.length} factors, expected ${rotaryDim / 2} (one per rotated pair)`);
  }
  // llama.cpp divides each pair's frequency by its rope_freqs factor (Llama 3.1's scaling as a GGUF stores it).
  const spec = (invFreq: Float32Array, mscale = 1): RopeSpec => ({
    invFreq: factors ? invFreq.map((f, i) => f / factors[i]!) : invFreq,
    mscale,
    style,
    rotaryDim,
  });
  if (!s) return spec(defaultInvFreq(theta, rotaryDim));
  switch (s.type) {
    case 'default':
      return spec(defaultInvFreq(theta, rotaryDim));
    case 'linear': {
      const factor = num(s, 'factor');
      return spec(defaultInvFreq(theta, rotaryDim).map((f) => f / factor));
    }
    case 'dynamic': {
      // vLLM's choice: the base that dynamic NTK would reach at factor × the trained length.
      const factor = num(s, 'factor');
      const base = theta * (factor * factor - (factor - 1)) ** (rotaryDim / (rotaryDim - 2));
      return spec(defaultInvFreq(base, rotaryDim));
    }
    case 'llama3':
      return spec(llama3(defaultInvFreq(theta, rotaryDim), s));
    case 'yarn': {
      const { invFreq, mscale } = yarn(theta, rotaryDim, s, cfg.maxPositionEmbeddings);
      return spec(invFreq, mscale);
    }
    case 'longrope':
    case 'su': {
      const { invFreq, mscale } = longRope(cfg, s, rotaryDim, maxModelLen);
      return spec(invFreq, mscale);
    }
    default:
      throw new UserError(
        `config.json: rope scaling type "${s.type}" is not supported (supported: default, linear, dynamic, llama3, yarn, longrope)`,
      );
  }
}

/**
 * No rotary embedding (the NoPE layers of SmolLM3 and Command R7B), as a rotation by angle 0: every backend's RoPE
 * (and the kernels that fuse it) leaves q and k exactly as they are, since cos 0 = 1 and sin 0 = 0.
 */
export function withoutRotation(spec: RopeSpec): RopeSpec {
  return { ...spec, invFreq: new Float32Array(spec.invFreq.length), mscale: 1 };
}
