import { type KvCompressionConfig, SNAPKV } from '../primitives/kv-compression.ts';
import { UserError } from '../util/errors.ts';

/** Throws unless `value` is a KV budget: an integer number of tokens >= 1, or a fraction of the prompt in (0, 1). */
export function checkKvBudget(value: number, field: string): number {
  if (!(Number.isFinite(value) && value > 0 && (value < 1 || Number.isInteger(value)))) {
    throw new UserError(
      `${field}: ${value} is not a KV budget (expected a whole number of tokens >= 1 or a fraction 0 < f < 1)`,
      field,
    );
  }
  return value;
}

/**
 * The entries a prompt of `promptLen` tokens keeps under `budget` (tokens, or a fraction rounded up), at least the
 * attention sinks and one more; null when the prompt fits (nothing to compress).
 */
export function kvBudgetFor(budget: number, promptLen: number): number | null {
  const tokens = Math.max(SNAPKV.sinks + 1, budget < 1 ? Math.ceil(budget * promptLen) : budget);
  return promptLen > tokens ? tokens : null;
}

/**
 * The entries a request's prompt KV is compressed to: its own budget (`kv_budget`) over the engine's, or null (none,
 * or the prompt fits). A budget asked of an engine without KV compression is refused.
 */
export function requestKvBudget(
  config: KvCompressionConfig | undefined,
  requested: number | undefined,
  promptLen: number,
): number | null {
  if (requested !== undefined && !config) {
    throw new UserError(
      'kv_budget: this model runs without KV compression (start it with --kv-compression snapkv)',
      'kv_budget',
    );
  }
  const budget = requested === undefined ? config?.budget : checkKvBudget(requested, 'kv_budget');
  return budget === undefined ? null : kvBudgetFor(budget, promptLen);
}
