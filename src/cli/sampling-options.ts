import type { Command } from 'commander';
import type { SamplingParams } from '../engine/types.ts';
import { parseIntFlag, parseNumberFlag } from './engine-options.ts';

/** Sampling flags shared by commands that generate text. */
export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option('--max-tokens <n>', 'tokens to generate at most (default 256, or what the context has room for)')
    .option('--temperature <t>', 'sampling temperature; 0 = greedy', '0')
    .option('--top-k <k>', 'sample from the k most likely tokens (0 = off)')
    .option('--top-p <p>', 'sample from the smallest set of tokens with this much probability')
    .option('--min-p <p>', 'drop tokens less likely than min-p times the most likely')
    .option('--repetition-penalty <x>', 'divide the logits of tokens already seen (1 = off)')
    .option('--presence-penalty <x>', 'subtract from the logits of generated tokens')
    .option('--frequency-penalty <x>', 'subtract per occurrence from the logits of generated tokens')
    .option('--min-tokens <n>', 'generate at least this many tokens before EOS or a stop')
    .option('--seed <n>', 'seed for reproducible sampling')
    .option('--stop <text...>', 'stop before any of these strings')
    .option('--ignore-eos', 'keep generating past the end-of-sequence token');
}

export function samplingParamsFrom(opts: Record<string, unknown>): Partial<SamplingParams> {
  const num = (key: string, flag: string) =>
    opts[key] === undefined ? undefined : parseNumberFlag(String(opts[key]), flag);
  const int = (key: string, flag: string) =>
    opts[key] === undefined ? undefined : parseIntFlag(String(opts[key]), flag);
  const p: Partial<SamplingParams> = {
    maxTokens: int('maxTokens', '--max-tokens'),
    temperature: num('temperature', '--temperature'),
    topK: int('topK', '--top-k'),
    topP: num('topP', '--top-p'),
    minP: num('minP', '--min-p'),
    repetitionPenalty: num('repetitionPenalty', '--repetition-penalty'),
    presencePenalty: num('presencePenalty', '--presence-penalty'),
    frequencyPenalty: num('frequencyPenalty', '--frequency-penalty'),
    minTokens: int('minTokens', '--min-tokens'),
    seed: int('seed', '--seed'),
    stop: opts.stop as string[] | undefined,
    ignoreEos: opts.ignoreEos === true ? true : undefined,
  };
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined));
}
