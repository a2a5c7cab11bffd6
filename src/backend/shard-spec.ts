/**
 * How a weight is split over tensor-parallel ranks (Megatron-style), as `loadWeight` is told; a backend of one rank
 * holds the whole weight whatever the spec.
 * - `replicate`: every rank holds all of it (norms).
 * - `out`: dim 0 split (the output features of `[out, in]`, or a 1-D bias): a column-parallel linear, or a
 *   vocabulary-parallel embedding table or LM head. `parts` are row ranges packed one after another (q/k/v, gate/up), each split on its
 *   own so a rank's packed weight holds its own share of every part.
 * - `in`: dim 1 split (the input features of `[out, in]`): a row-parallel linear, its partial outputs summed by
 *   `allReduce`.
 * - `first`: rank 0 holds it, the others zeros (a row-parallel linear's bias, added once by the all-reduce).
 */
export type ShardSpec = { split: 'replicate' | 'in' | 'first' } | { split: 'out'; parts?: readonly ShardPart[] };

/**
 * A part of an `out`-split weight: `rows` rows cut into `pieces` equal slices; rank r of N holds slice
 * ⌊r · pieces / N⌋ (pieces = N: a slice each; pieces < N, dividing N: KV heads replicated over N / pieces ranks).
 */
export interface ShardPart {
  rows: number;
  pieces: number;
}
