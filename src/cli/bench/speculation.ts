import type { EngineStats } from '../../engine/types.ts';

/**
 * What speculative decoding did between two readings of the engine's counters, as bench rows (label, value); none
 * when the engine does not speculate.
 */
export function speculationRows(speculates: boolean, before: EngineStats, after: EngineStats): [string, string][] {
  if (!speculates) return [];
  const drafted = after.specDraftTokens - before.specDraftTokens;
  const accepted = after.specAcceptedTokens - before.specAcceptedTokens;
  return [
    ['draft tokens', String(drafted)],
    ['accepted draft tokens', String(accepted)],
    ['acceptance', drafted > 0 ? `${((100 * accepted) / drafted).toFixed(1)}%` : '-'],
  ];
}
