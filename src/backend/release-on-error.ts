import type { Backend } from './backend.ts';

/**
 * `work()` over backends the caller made (`made()`, read when `work` throws: those made so far that are the caller's
 * to free): if it throws (bad weights, a KV cache that does not fit, a missing tokenizer), each of them is freed
 * before the error goes on, so that a server trying the load again does not leak a model's memory each time. The
 * load's own error is the one reported; a release that fails too is attached to it (`cause`).
 */
export function releasingOnError<T>(made: () => readonly Backend[], work: () => T): T {
  try {
    return work();
  } catch (e) {
    const failed: unknown[] = [];
    for (const b of made()) {
      try {
        b.release();
      } catch (err) {
        failed.push(err);
      }
    }
    if (failed.length && e instanceof Error) e.cause ??= new AggregateError(failed, 'freeing the failed load');
    throw e;
  }
}
