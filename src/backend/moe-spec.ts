import type { Tensor } from './backend.ts';

/** How a mixture-of-experts block routes: softmax over the experts' router logits, then the top k per token. */
export interface MoeSpec {
  /** Experts each token is sent to (`num_experts_per_tok`). */
  topK: number;
  /** Divide the top-k probabilities by their sum (`norm_topk_prob`; Mixtral always does). */
  normTopK: boolean;
}

/**
 * A mixture-of-experts block's weights, every expert's stacked so a backend can run one grouped GEMM per projection
 * (E experts of width I over hidden size H).
 */
export interface MoeWeights {
  /** The router `[E, H]`: a token's router logits are `x · routerᵀ`. */
  router: Tensor;
  /** Each expert's gate_proj then up_proj rows `[E, 2I, H]` (the packed gate/up of `linearActMul`). */
  gateUp: Tensor;
  /** Each expert's down_proj `[E, H, I]`. */
  down: Tensor;
  /**
   * An expert every token goes through (Qwen2-MoE), gate/up packed `[2Is, H]` and down `[H, Is]`, its output scaled
   * by sigmoid(x · gateᵀ) where `gate` `[1, H]` is given.
   */
  shared?: { gateUp: Tensor; down: Tensor; gate?: Tensor };
}
