import type { ShardSpec } from '../backend/shard-spec.ts';
import type { ModelConfig } from '../loader/hf-config.ts';
import { UserError } from '../util/errors.ts';
import type { Architecture } from './architecture.ts';

/**
 * A dense decoder's share on each of N tensor-parallel ranks (Megatron-style) and how its weights split: q/k/v and
 * gate/up by output features, o_proj and down_proj by input features (their sums taken by `allReduce`, their biases
 * added once by rank 0), the embedding table and the LM head by vocabulary rows; norms are replicated.
 */
export interface RankShare {
  numHeads: number;
  /** KV heads per rank: split when there are at least N, else one per rank (replicated over N / KV heads ranks). */
  numKvHeads: number;
  intermediateSize: number;
  /** q_proj, k_proj, v_proj packed: each rank's q heads with the k and v heads they attend through. */
  qkv: ShardSpec;
  /** gate_proj, up_proj packed: each rank's slice of both. */
  gateUp: ShardSpec;
}

export const ROW_PARALLEL: ShardSpec = { split: 'in' };
export const ROW_PARALLEL_BIAS: ShardSpec = { split: 'first' };
export const VOCAB_PARALLEL: ShardSpec = { split: 'out' };
/** A plain MLP's up projection: each rank's slice of its output features. */
export const COLUMN_PARALLEL: ShardSpec = { split: 'out' };

/** The per-rank share of `cfg` over `ranks` ranks; one line naming the numbers when they do not divide. */
export function rankShare(cfg: ModelConfig, ranks: number): RankShare {
  const { numHeads, numKvHeads, intermediateSize, headDim, vocabSize } = cfg;
  const flag = `--tensor-parallel-size ${ranks}`;
  if (numHeads % ranks !== 0) {
    throw new UserError(`${flag}: the ${numHeads} attention heads do not divide into ${ranks} ranks`);
  }
  if (numKvHeads >= ranks ? numKvHeads % ranks !== 0 : ranks % numKvHeads !== 0) {
    throw new UserError(
      `${flag}: the ${numKvHeads} KV heads neither divide into ${ranks} ranks nor divide ${ranks} (to be replicated)`,
    );
  }
  if (intermediateSize % ranks !== 0) {
    throw new UserError(`${flag}: the MLP's intermediate size ${intermediateSize} does not divide into ${ranks} ranks`);
  }
  if (vocabSize % ranks !== 0) {
    throw new UserError(`${flag}: the vocabulary of ${vocabSize} tokens does not divide into ${ranks} ranks`);
  }
  const kvPieces = Math.min(numKvHeads, ranks);
  const kvPart = { rows: numKvHeads * headDim, pieces: kvPieces };
  return {
    numHeads: numHeads / ranks,
    numKvHeads: numKvHeads / kvPieces,
    intermediateSize: intermediateSize / ranks,
    qkv: { split: 'out', parts: [{ rows: numHeads * headDim, pieces: ranks }, kvPart, kvPart] },
    gateUp: {
      split: 'out',
      parts: [
        { rows: intermediateSize, pieces: ranks },
        { rows: intermediateSize, pieces: ranks },
      ],
    },
  };
}

/** Refuses more than one rank for an architecture whose forward is not written for tensor parallelism. */
export function checkTensorParallel(arch: Architecture, ranks: number, configPath: string): void {
  if (ranks > 1 && !arch.tensorParallel) {
    throw new UserError(
      `${configPath}: ${arch.names[0]} cannot run with --tensor-parallel-size ${ranks} (tensor parallelism covers the dense Llama family: Llama, Mistral, Qwen2, Qwen3, Phi-3)`,
    );
  }
}
