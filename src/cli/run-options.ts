import type { Command } from 'commander';
import { parseDuration } from '../server/config.ts';
import { UserError } from '../util/errors.ts';
import type { ChatSettings } from './chat/set-command.ts';
import { samplingParamsFrom } from './sampling-options.ts';

/** `--think`'s values, as `ollama run` takes them: on, off, or a level (which a template reads as on). */
export type ThinkSetting = boolean | 'high' | 'medium' | 'low';

const THINK_VALUES: Record<string, ThinkSetting> = {
  true: true,
  false: false,
  high: 'high',
  medium: 'medium',
  low: 'low',
};

/** A `--think` (or `/set think`) value, undefined when it is none of them. */
export function thinkValue(text: string): ThinkSetting | undefined {
  return THINK_VALUES[text.toLowerCase()];
}

/** The flags of `pagoda run` that shape its answers, besides the sampling and engine flags. */
export function addRunOptions(cmd: Command): Command {
  return cmd
    .option('--raw', "continue the prompt as plain text, without the model's chat template")
    .option('--verbose', "print each answer's counts and timings after it (one-shot: on stderr)")
    .option('--format <format>', 'json: answers constrained to a JSON object')
    .option(
      '--think [value]',
      'thinking models: think first, shown apart (--think=false, or a level: high, medium, low)',
    )
    .option('--hidethinking', "thinking models: show only the answer, not the model's thinking")
    .option('--keepalive <duration>', 'how long a server keeps the model loaded (5m, 1h, 0, -1); no effect in-process')
    .option('--nowordwrap', 'accepted for Ollama compatibility: pagoda never wraps words');
}

/** The run flags as chat settings, each checked before anything loads; a bad value is one line naming its flag. */
export function runSettingsFrom(opts: Record<string, unknown>): ChatSettings {
  const settings: ChatSettings = { params: samplingParamsFrom(opts), raw: opts.raw === true };
  if (opts.verbose === true) settings.verbose = true;
  if (opts.format !== undefined) {
    if (opts.format !== 'json') throw new UserError(`--format ${opts.format}: expected "json"`);
    settings.format = 'json';
  }
  if (opts.think !== undefined) {
    const think = opts.think === true ? true : thinkValue(String(opts.think));
    if (think === undefined) throw new UserError(`--think=${opts.think}: expected true, false, high, medium or low`);
    settings.think = think;
  }
  if (opts.hidethinking === true) settings.hideThinking = true;
  if (opts.keepalive !== undefined) {
    const ms = parseDuration(String(opts.keepalive));
    if (ms === null) throw new UserError(`--keepalive ${opts.keepalive}: expected a duration (e.g. 5m, 1h, 0, -1)`);
    settings.keepAlive = ms < 0 ? -1 : ms / 1000;
  }
  return settings;
}

/**
 * A bare `--think` read as `--think=true`, so that the word after it stays an argument (the prompt), as Ollama's
 * flag reads: a value comes only after "=".
 */
export function bareThinkFlag(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  return argv.map((arg, i) => (arg === '--think' && (end < 0 || i < end) ? '--think=true' : arg));
}

/**
 * What a run asks of a model's thinking: --hidethinking alone asks a model that thinks to think (unseen); thinking
 * asked of a model that cannot is refused in Ollama's words.
 */
export function thinkingFor(
  settings: ChatSettings,
  model: { thinks: boolean; name: string },
): ThinkSetting | undefined {
  const { think, hideThinking } = settings;
  if (think === undefined) return hideThinking && model.thinks ? true : undefined;
  if (think !== false && !model.thinks) throw new UserError(`"${model.name}" does not support thinking`);
  return think;
}
