import type { Command } from 'commander';
import { resolveSamplingParams } from '../engine/params.ts';
import type { SamplingParams } from '../engine/types.ts';
import { UserError } from '../util/errors.ts';
import { parseIntFlag, parseNumberFlag } from './engine-options.ts';

/** Sampling flags shared by commands that generate text. None has a default: a flag overrides only when given. */
export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option('--max-tokens <n>', "tokens to generate at most (default: the model's num_predict, else 256)")
    .option('--temperature <t>', "sampling temperature (default: the model's, else 0 = greedy)")
    .option('--top-k <k>', 'sample from the k most likely tokens (0 = off)')
    .option('--top-p <p>', 'sample from the smallest set of tokens with this much probability')
    .option('--min-p <p>', 'drop tokens less likely than min-p times the most likely')
    .option('--repetition-penalty <x>', 'divide the logits of tokens already seen (1 = off)')
    .option('--presence-penalty <x>', 'subtract from the logits of generated tokens')
    .option('--frequency-penalty <x>', 'subtract per occurrence from the logits of generated tokens')
    .option('--min-tokens <n>', 'generate at least this many tokens before EOS or a stop')
    .option('--seed <n>', 'seed for reproducible sampling')
    .option('--stop <text>', 'stop before this string (repeat the flag for more)', collect)
    .option('--ignore-eos', 'keep generating past the end-of-sequence token');
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Numeric flags in checking order (--max-tokens before --min-tokens, which must not exceed it). */
const NUMERIC_FLAGS: [keyof SamplingParams, string, 'int' | 'number'][] = [
  ['maxTokens', '--max-tokens', 'int'],
  ['temperature', '--temperature', 'number'],
  ['topK', '--top-k', 'int'],
  ['topP', '--top-p', 'number'],
  ['minP', '--min-p', 'number'],
  ['repetitionPenalty', '--repetition-penalty', 'number'],
  ['presencePenalty', '--presence-penalty', 'number'],
  ['frequencyPenalty', '--frequency-penalty', 'number'],
  ['minTokens', '--min-tokens', 'int'],
  ['seed', '--seed', 'int'],
];

/**
 * The sampling flags that were given, checked with the engine's own rules before anything loads; a bad value is
 * refused in one line naming the flag.
 */
export function samplingParamsFrom(opts: Record<string, unknown>): Partial<SamplingParams> {
  const given: Partial<SamplingParams> = {};
  const accept = (key: keyof SamplingParams, value: unknown, flag: string, text: string) => {
    Object.assign(given, { [key]: value });
    try {
      resolveSamplingParams(given);
    } catch (err) {
      const message = (err as Error).message;
      const expected = message.indexOf(': expected ');
      throw new UserError(`${flag} ${text}: ${expected >= 0 ? message.slice(expected + 2) : message}`);
    }
  };
  for (const [key, flag, kind] of NUMERIC_FLAGS) {
    if (opts[key] === undefined) continue;
    const text = String(opts[key]);
    accept(key, kind === 'int' ? parseIntFlag(text, flag) : parseNumberFlag(text, flag), flag, text);
  }
  for (const stop of (opts.stop as string[] | undefined) ?? []) {
    accept('stop', [...(given.stop ?? []), stop], '--stop', JSON.stringify(stop));
  }
  if (opts.ignoreEos === true) given.ignoreEos = true;
  return given;
}

/**
 * What `run` asks of the engine: the given flags over pagoda's own default (greedy) where the model sets no
 * temperature; the engine puts the model's defaults (Modelfile PARAMETERs, then generation_config.json) beneath.
 */
export function withRunDefaults(
  given: Partial<SamplingParams>,
  modelDefaults: Partial<SamplingParams> = {},
): Partial<SamplingParams> {
  return modelDefaults.temperature === undefined ? { temperature: 0, ...given } : { ...given };
}
