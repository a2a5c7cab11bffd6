import type { Scheduler } from './scheduler.ts';
import type { EngineStats } from './types.ts';

/** Counts one step of `tokens` tokens into a map of steps by size (EngineStats.stepTokens). */
export function countStep(stepTokens: Map<number, number>, tokens: number): void {
  stepTokens.set(tokens, (stepTokens.get(tokens) ?? 0) + 1);
}

/** The engine's running totals since it started, which `stats()` reports beside the scheduler's and the KV cache's. */
export class EngineCounters {
  promptTokens = 0;
  promptTokensComputed = 0;
  generationTokens = 0;
  steps = 0;
  readonly stepTokens = new Map<number, number>();
  draftTokens = 0;
  acceptedDraftTokens = 0;

  /** A step launched that computes `tokens` tokens (prompt chunks, decode tokens, draft tokens checked). */
  stepLaunched(tokens: number): void {
    this.steps++;
    countStep(this.stepTokens, tokens);
  }

  /** These totals with the queues and the KV cache as they are now. */
  stats(scheduler: Scheduler): EngineStats {
    const blocks = scheduler.blocks;
    return {
      running: scheduler.running.length,
      waiting: scheduler.waiting.length,
      totalBlocks: blocks.numBlocks,
      freeBlocks: blocks.numFree,
      blockSize: blocks.blockSize,
      preemptions: scheduler.preemptions,
      promptTokens: this.promptTokens,
      promptTokensComputed: this.promptTokensComputed,
      generationTokens: this.generationTokens,
      prefixCacheHits: blocks.prefixHits,
      prefixCacheQueries: blocks.prefixQueries,
      steps: this.steps,
      stepTokens: this.stepTokens,
      kvBlocksSaved: scheduler.kvBlocksSaved,
      specDraftTokens: this.draftTokens,
      specAcceptedTokens: this.acceptedDraftTokens,
    };
  }
}
