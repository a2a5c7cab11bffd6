import type { SamplingRow } from '../../src/backend/backend.ts';

/**
 * A sampling row with no processor but `temperature` (0: argmax), keyed by `seed` and `step`: the base the sampler's
 * tests and the decode benches vary.
 */
export function plainRow(temperature: number, seed: number, step: number): SamplingRow {
  return {
    temperature,
    topK: 0,
    topP: 1,
    minP: 0,
    repetitionPenalty: 1,
    presencePenalty: 0,
    frequencyPenalty: 0,
    seed,
    step,
  };
}
