import type { Backend } from './backend.ts';

/**
 * `work()` over backends the caller made (`made()`, read when `work` throws: those made so far that are the caller's
 * to free): if it throws (bad weights, a KV cache that does not fit, a missing tokenizer), their memory is freed
 * before the error goes on, so that a server trying the load again does not leak a model's worth of memory each time.
 */
export function releasingOnError<T>(made: () => readonly Backend[], work: () => T): T {
  try {
    return work();
  } catch (e) {
    try {
      for (const b of made()) b.release();
    } finally {
      // biome-ignore lint/correctness/noUnsafeFinally: the load's own error is the one to report
      throw e;
    }
  }
}
