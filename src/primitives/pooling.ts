/**
 * How one sequence's token states become one vector: sentence-transformers' pooling modes (`cls`: the first token,
 * `last`: the last one, `mean` / `max` over the tokens, `mean_sqrt_len`: the sum over sqrt(length),
 * `weighted_mean`: token i weighted by i + 1).
 */
export type PoolingMode = 'cls' | 'last' | 'mean' | 'max' | 'mean_sqrt_len' | 'weighted_mean';

export const POOLING_MODES: readonly PoolingMode[] = ['cls', 'last', 'mean', 'max', 'mean_sqrt_len', 'weighted_mean'];
