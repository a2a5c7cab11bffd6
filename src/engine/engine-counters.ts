import type { Scheduler } from './scheduler.ts';
import type { EngineStats } from './types.ts';

/** The engine's running totals since it started, which `stats()` reports beside the scheduler's and the KV cache's. */
export class EngineCounters {
  promptTokens = 0;
  promptTokensComputed = 0;
  generationTokens = 0;
  steps = 0;
  draftTokens = 0;
  acceptedDraftTokens = 0;

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
      kvBlocksSaved: scheduler.kvBlocksSaved,
      specDraftTokens: this.draftTokens,
      specAcceptedTokens: this.acceptedDraftTokens,
    };
  }
}
