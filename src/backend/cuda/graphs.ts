import type { StepBatch } from '../../primitives/step-batch.ts';
import type { StepContext, Tensor } from '../backend.ts';
import type { CudaContext } from './context.ts';
import type { DevPtr, Handle } from './driver.ts';
import { captureGraph, destroyGraph, replayGraph } from './graph-capture.ts';
import type { KvCaches } from './kv-cache.ts';
import { isPlainDecode, padDecodeBatch } from './step-buffers.ts';
import { CudaTensor, cuda } from './tensor.ts';

const GRAPH_BUCKET_STEP = 32;

/**
 * Batch-size buckets graphs are captured for: 1, 2, 4, 8, 16, 32, then every 32, and the largest batch itself. Past
 * 32 sequences a padded row costs its share of the step's GEMMs and small kernels (~0.2 ms a step per 32 rows on
 * an H100 at 128-256 rows), so the buckets there are dense; a capture costs ~10 ms of host time, once.
 */
export function graphBuckets(maxBatch: number): number[] {
  const out: number[] = [];
  for (let b = 1; b < maxBatch; b = b < GRAPH_BUCKET_STEP ? 2 * b : b + GRAPH_BUCKET_STEP) out.push(b);
  out.push(maxBatch);
  return out;
}

interface Captured {
  exec: Handle;
  out: CudaTensor;
  /** Arena and step-buffer generations the graph's addresses belong to. */
  generation: string;
}

/**
 * CUDA graphs for decode steps, one per batch-size bucket. A decode batch is padded to its bucket, its metadata
 * copied into the fixed step buffers, and the bucket's graph replayed; the first time, the step runs eagerly once
 * (kernel compiles, GEMM algorithm choice, arena sizing) and is then captured.
 */
export class DecodeGraphs {
  private readonly captured = new Map<number, Captured>();
  private buckets: number[] = graphBuckets(256);
  /** Replays and captures so far, and the host milliseconds capturing took (eager warm-up step included). */
  readonly stats = { replays: 0, captures: 0, captureMs: 0 };

  constructor(
    private readonly ctx: CudaContext,
    private readonly kv: KvCaches,
  ) {}

  /** Sets the largest batch a graph is captured for (the engine's max-num-seqs). */
  setMaxBatch(maxBatch: number): void {
    this.buckets = graphBuckets(maxBatch);
    this.clear();
  }

  clear(): void {
    for (const c of this.captured.values()) destroyGraph(this.ctx.drv, c.exec);
    this.captured.clear();
  }

  /** Graphs hold the addresses of the arena, the step buffers and the KV cache: any of them moving retires them. */
  private generation(): string {
    return `${this.ctx.arena.generation}/${this.ctx.steps.generation}/${this.kv.generation}`;
  }

  /** Replays (capturing first if needed) the step's graph; null when the step is not a graphable decode step. */
  run(
    batch: StepBatch,
    forward: (step: StepContext) => Tensor,
    inputs?: { ptr: DevPtr; count: number },
  ): Tensor | null {
    if (!isPlainDecode(batch)) return null;
    const size = this.buckets.find((b) => b >= batch.numSeqs);
    if (size === undefined) return null;
    const padded = padDecodeBatch(batch, size);
    // Upload first: it may grow the step buffers, which invalidates graphs captured over the old ones.
    let step = this.ctx.beginStep(padded, inputs);
    let c = this.captured.get(size);
    if (c && c.generation !== this.generation()) {
      this.clear();
      c = undefined;
    }
    if (!c) {
      const t0 = performance.now();
      forward(step);
      step = this.ctx.beginStep(padded, inputs);
      let out: Tensor | null = null;
      const exec = captureGraph(this.ctx.drv, () => {
        out = forward(step);
      });
      c = { exec, out: cuda(out!), generation: this.generation() };
      this.captured.set(size, c);
      this.stats.captures++;
      this.stats.captureMs += performance.now() - t0;
    }
    replayGraph(this.ctx.drv, c.exec);
    this.stats.replays++;
    const vocab = c.out.shape[c.out.shape.length - 1]!;
    return new CudaTensor([batch.numSeqs, vocab], c.out.dtype, c.out.ptr);
  }
}
