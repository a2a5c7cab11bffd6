import type { RequestMetrics } from '../../engine/types.ts';

/** An answer's counts and timings, as `ollama run --verbose` prints them. */
export interface AnswerStats {
  totalMs: number;
  loadMs: number;
  promptTokens: number;
  promptMs: number;
  evalTokens: number;
  evalMs: number;
}

/** The stats of an answer computed in this process, from its last output's metrics (the model was loaded already). */
export function statsFromMetrics(m: RequestMetrics): AnswerStats {
  const end = m.finishedTime ?? Date.now();
  const first = m.firstTokenTime ?? end;
  return {
    totalMs: end - m.arrivalTime,
    loadMs: 0,
    promptTokens: m.promptTokens,
    promptMs: first - m.arrivalTime,
    evalTokens: m.generationTokens,
    evalMs: end - first,
  };
}

/** The stats of an answer from a server: the final object of Ollama's /api/chat or /api/generate (nanoseconds). */
export function statsFromOllama(final: Record<string, unknown>): AnswerStats {
  const num = (key: string) => (typeof final[key] === 'number' ? (final[key] as number) : 0);
  return {
    totalMs: num('total_duration') / 1e6,
    loadMs: num('load_duration') / 1e6,
    promptTokens: num('prompt_eval_count'),
    promptMs: num('prompt_eval_duration') / 1e6,
    evalTokens: num('eval_count'),
    evalMs: num('eval_duration') / 1e6,
  };
}

/** The lines `ollama run --verbose` prints after an answer. */
export function formatStats(s: AnswerStats): string {
  const duration = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(3)}s` : `${ms.toFixed(3)}ms`);
  const rate = (tokens: number, ms: number) => (ms > 0 ? `${((tokens * 1000) / ms).toFixed(2)} tokens/s` : 'n/a');
  return [
    `total duration:       ${duration(s.totalMs)}`,
    `load duration:        ${duration(s.loadMs)}`,
    `prompt eval count:    ${s.promptTokens} token(s)`,
    `prompt eval duration: ${duration(s.promptMs)}`,
    `prompt eval rate:     ${rate(s.promptTokens, s.promptMs)}`,
    `eval count:           ${s.evalTokens} token(s)`,
    `eval duration:        ${duration(s.evalMs)}`,
    `eval rate:            ${rate(s.evalTokens, s.evalMs)}`,
  ].join('\n');
}
