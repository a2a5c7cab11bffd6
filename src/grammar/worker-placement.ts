import { availableParallelism } from 'node:os';

/** What placement reads of a grammar worker. */
export interface WorkerLoad {
  /** Compiles sent and not yet answered: its masks may wait behind them. */
  compiling: number;
  /** Matchers open on it. */
  open: number;
}

/**
 * Matchers a worker holding a grammar may have beyond another worker before that grammar is compiled there too:
 * spreading costs a compile (cached by the worker), imbalance costs masks computed one after another each step.
 */
export const SPREAD_MARGIN = 4;

/**
 * Grammar workers for a host: every core but two (the step loop's, and one for the server and tokenizer), at least two
 * (so that one long compile never holds every request) and at most eight (64 masks a step at ~0.3 ms each fit a
 * 6.7 ms GPU step with room to spare; each worker holds its own copy of the vocabulary's tables).
 */
export function defaultGrammarWorkers(cores = availableParallelism()): number {
  return Math.max(2, Math.min(8, cores - 2));
}

/**
 * Where a new spec compiles: a worker with no compile in flight and the fewest matchers; `'new'` (start one) while
 * every worker has matchers or a compile and the pool has room; else the worker with the fewest compiles in flight.
 */
export function compileWorker<W extends WorkerLoad>(workers: readonly W[], max: number): W | 'new' {
  const idle = fewestOpen(workers.filter((w) => w.compiling === 0));
  if (idle && (idle.open === 0 || workers.length >= max)) return idle;
  if (workers.length < max) return 'new';
  return [...workers].sort((a, b) => a.compiling - b.compiling || a.open - b.open)[0]!;
}

/**
 * Where a new matcher of a grammar opens: the holder of that grammar with the fewest matchers, unless a worker
 * without it (one with no compile in flight, else a new one while the pool has room) has SPREAD_MARGIN fewer; then the
 * grammar is compiled there too. So matchers of one popular grammar spread over the pool, and their masks are
 * computed in parallel.
 */
export function matcherWorker<W extends WorkerLoad>(
  workers: readonly W[],
  holders: readonly W[],
  max: number,
): W | 'new' {
  const best = fewestOpen(holders);
  if (!best) throw new Error('matcherWorker: the grammar is compiled nowhere');
  const spare = fewestOpen(workers.filter((w) => w.compiling === 0 && !holders.includes(w)));
  if (spare && spare.open + SPREAD_MARGIN <= best.open) return spare;
  if (workers.length < max && SPREAD_MARGIN <= best.open) return 'new';
  return best;
}

function fewestOpen<W extends WorkerLoad>(workers: readonly W[]): W | undefined {
  let best: W | undefined;
  for (const w of workers) if (!best || w.open < best.open) best = w;
  return best;
}
