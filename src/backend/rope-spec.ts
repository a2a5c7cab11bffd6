import type { Tensor } from './backend.ts';

/** Rotary embedding parameters after the model's rope_scaling has been folded in. */
export interface RopeSpec {
  /** Per-pair inverse frequencies, length head_dim_rotary / 2 (scaling already applied). */
  invFreq: Float32Array;
  /** Multiplier on cos/sin (YaRN's attention factor; 1 otherwise). */
  mscale: number;
  /** 'neox': pairs (i, i + d/2) as HF Llama does; 'gptj': pairs (2i, 2i + 1). */
  style: 'neox' | 'gptj';
  /** How many leading dims of each head are rotated (head_dim unless partial rotary). */
  rotaryDim: number;
}

/**
 * A per-head RMSNorm of q and k before their rotation (Qwen3's and Gemma 3's q_norm / k_norm): each head of q by
 * `q`, each of k by `k` (`[head_dim]` each), as `rmsNorm` of a `[T * heads, head_dim]` view computes it.
 */
export interface HeadNorm {
  q: Tensor;
  k: Tensor;
  eps: number;
  /** As rmsNorm's: Gemma's 1 (it scales by 1 + w), else 0. */
  weightOffset: number;
}
