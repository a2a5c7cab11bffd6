import type { LayerKvCache } from '../backend/backend.ts';
import type { CudaBackend } from '../backend/cuda/backend.ts';
import type { Model } from '../models/model.ts';
import type { KvQuant } from '../primitives/kv-cache-type.ts';
import { UserError } from '../util/errors.ts';
import { buildStepBatch, type ScheduledChunk } from './step-batch.ts';

export interface KvSizingOptions {
  blockSize: number;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  maxModelLen: number;
  /** Fraction of the device's memory pagoda may use in all (vLLM's --gpu-memory-utilization). */
  gpuMemoryUtilization: number;
  /** The cache's quantized storage; absent: the compute dtype. */
  kvQuant?: KvQuant;
}

/** Memory kept back for CUDA graphs, the context and fragmentation. */
const RESERVE = 512 << 20;

/** A quantized cache's tokens per byte against the float cache's, as the start-up line says it ("" for a float cache). */
function quantGain(backend: CudaBackend, model: Model, o: KvSizingOptions, blockBytes: number): string {
  if (!o.kvQuant) return '';
  const float = backend.kvBlockBytes({ ...model.kvShape, blockSize: o.blockSize });
  return `, ${o.kvQuant}: ${(float / blockBytes).toFixed(2)}x a ${backend.ctx.dtype} cache's`;
}

/** Runs one prefill step of `tokens` prompt tokens on a throwaway cache (through the model's own backend). */
function runPrefill(backend: CudaBackend, model: Model, o: KvSizingOptions, tokens: number): void {
  const chunks: ScheduledChunk[] = [];
  let next = 0;
  for (let left = tokens; left > 0 && chunks.length < o.maxNumSeqs; ) {
    const n = Math.min(left, o.maxModelLen);
    const blocks = Math.ceil(n / o.blockSize);
    chunks.push({
      tokenIds: Array.from({ length: n }, (_, i) => i % model.config.vocabSize),
      startPos: 0,
      blockTable: Array.from({ length: blocks }, (_, i) => next + i),
      logits: 'last',
    });
    next += blocks;
    left -= n;
  }
  const b = model.backend;
  const kv: LayerKvCache[] = b.allocKvCache({ ...model.kvShape, numBlocks: next, blockSize: o.blockSize });
  model.forward(b.beginStep(buildStepBatch(chunks, o.blockSize)), kv);
  backend.ctx.drv.sync();
  backend.releaseKvCaches();
}

/**
 * Sizes the KV cache as vLLM does: run the largest step once (a prefill of max-num-batched-tokens) on a throwaway
 * cache so the activation arena reaches its peak, then give the KV cache what is left of
 * total x utilization. Returns the block count and a line for the start-up report.
 */
export function profileKvBlocks(
  backend: CudaBackend,
  model: Model,
  o: KvSizingOptions,
): { numBlocks: number; report: string } {
  const blocksPerSeq = Math.ceil(o.maxModelLen / o.blockSize);
  backend.reserveSteps({ tokens: Math.max(o.maxNumBatchedTokens, o.maxNumSeqs), seqs: o.maxNumSeqs, blocksPerSeq });
  backend.graphs?.setMaxBatch(o.maxNumSeqs);

  // A small step first measures one layer's activations per token; the arena is sized from it so the profiling
  // step (max-num-batched-tokens prompt tokens in sequences of at most max-model-len) wraps instead of spilling.
  const small = Math.min(o.maxNumBatchedTokens, 512);
  runPrefill(backend, model, o, small);
  backend.ctx.arena.ensure(Math.ceil((3.3 * backend.ctx.arena.peakLayer * o.maxNumBatchedTokens) / small) + (64 << 20));
  runPrefill(backend, model, o, o.maxNumBatchedTokens);
  backend.reserveSampling(o.maxNumSeqs, model.config.vocabSize);
  backend.releaseKvCaches();

  const { free, total } = backend.ctx.drv.memInfo();
  const blockBytes = backend.kvBlockBytes({ ...model.kvShape, blockSize: o.blockSize, quant: o.kvQuant });
  const budget = free - total * (1 - o.gpuMemoryUtilization) - RESERVE;
  // No more than every sequence at full length could use (a small model would otherwise take the whole card).
  const useful = o.maxNumSeqs * blocksPerSeq;
  const numBlocks = Math.min(useful, Math.floor(budget / blockBytes));
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (numBlocks < blocksPerSeq) {
    throw new UserError(
      `--gpu-memory-utilization ${o.gpuMemoryUtilization}: ${gib(Math.max(0, budget))} left for the KV cache after weights and activations, one ${o.maxModelLen}-token sequence needs ${gib(blocksPerSeq * blockBytes)}; raise --gpu-memory-utilization or lower --max-model-len / --max-num-batched-tokens`,
    );
  }
  const tokens = numBlocks * o.blockSize;
  return {
    numBlocks,
    report: `KV cache: ${numBlocks} blocks of ${o.blockSize} tokens (${tokens} tokens${quantGain(backend, model, o, blockBytes)}, ${gib(numBlocks * blockBytes)}) from ${gib(free)} free x utilization ${o.gpuMemoryUtilization}${numBlocks === useful ? ` (capped at max-num-seqs x max-model-len)` : ''}; the profiling step of ${o.maxNumBatchedTokens} tokens runs in a ${(backend.ctx.arena.capacityBytes / 2 ** 20).toFixed(0)} MiB activation arena`,
  };
}
