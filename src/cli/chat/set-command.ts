import { resolveSamplingParams } from '../../engine/params.ts';
import type { SamplingParams } from '../../engine/types.ts';
import { samplingFrom } from '../../primitives/sampling-names.ts';
import type { ParameterValue } from '../../store/manifest.ts';
import { PARAMETER_TYPES, setParameter } from '../../store/modelfile.ts';
import { UserError } from '../../util/errors.ts';
import { type ThinkSetting, thinkValue } from '../run-options.ts';
import type { ChatBackend } from './repl.ts';

/** What `/set` needs to know of the model. */
type ChatModel = Pick<ChatBackend, 'hasTemplate' | 'thinks' | 'model'>;

/** What the chat sends with each turn besides the conversation. */
export interface ChatSettings {
  /** Sampling values given by flags or `/set parameter`; the model's defaults (and pagoda's) lie beneath. */
  params: Partial<SamplingParams>;
  /** Continue the conversation as plain text, without the chat template. */
  raw: boolean;
  /** `/set system`: the system message of every turn (the model's SYSTEM otherwise). */
  system?: string;
  /** `/set verbose`: each answer's counts and timings after it. */
  verbose?: boolean;
  /** `/set format json`: answers constrained to JSON. */
  format?: 'json';
  /** `--think`: the template's enable_thinking, and the thinking shown apart from the answer (undefined: as before). */
  think?: ThinkSetting;
  /** `--hidethinking`: the thinking is not shown. */
  hideThinking?: boolean;
  /** `--keepalive`: how long a server keeps the model loaded after each answer, in seconds (-1: forever). */
  keepAlive?: number;
}

export const SET_HELP = `Available /set commands:
  /set parameter NAME VALUE   a sampling parameter, as a Modelfile PARAMETER (temperature, top_k, num_predict, stop, ...)
  /set system TEXT            the system message
  /set raw                    continue the conversation as plain text, without the chat template
  /set noraw                  use the chat template again
  /set verbose                show each answer's counts and timings
  /set quiet                  stop showing them
  /set format json            answer in JSON (/unset format ends it)
  /set think [LEVEL]          thinking models: think first (LEVEL high, medium or low), shown apart
  /set nothink                thinking models: answer without thinking`;

export const UNSET_HELP = `Available /unset commands:
  /unset system               the model's own system message again
  /unset format               answer in free text again`;

/** Applies `/set ...` (the text after "/set") to `settings`; returns the line to print. */
export function applySet(args: string, settings: ChatSettings, model: ChatModel): string {
  const [what = '', ...rest] = args.trim().split(/\s+/);
  switch (what) {
    case 'parameter':
      return setSamplingParameter(rest, settings);
    case 'system': {
      const text = args.trim().slice('system'.length).trim();
      if (!text) return SET_HELP;
      settings.system = text;
      return 'Set system message.';
    }
    case 'raw':
      settings.raw = true;
      return 'Set raw mode: the conversation is continued as plain text.';
    case 'noraw':
      settings.raw = false;
      return model.hasTemplate
        ? "Set chat mode: the model's chat template applies."
        : 'This model has no chat template: the conversation is still continued as plain text.';
    case 'verbose':
      settings.verbose = true;
      return 'Set verbose mode.';
    case 'quiet':
      settings.verbose = false;
      return 'Set quiet mode.';
    case 'format':
      if (rest.join(' ') !== 'json') return `Couldn't set format: expected "json", got "${rest.join(' ')}"`;
      settings.format = 'json';
      return "Set format to 'json' mode.";
    case 'think':
    case 'nothink': {
      if (!model.thinks) return `"${model.model}" does not support thinking`;
      const level = what === 'nothink' ? false : rest.length ? thinkValue(rest.join(' ')) : true;
      if (level === undefined) return `Couldn't set think: expected high, medium or low, got "${rest.join(' ')}"`;
      settings.think = level;
      return level === false ? "Set 'nothink' mode." : `Set 'think' mode${level === true ? '' : ` to '${level}'`}.`;
    }
    case '':
      return SET_HELP;
    default:
      return `Unknown command '/set ${what}'. Type /set for help`;
  }
}

/** Applies `/unset ...` (the text after "/unset") to `settings`; returns the line to print. */
export function applyUnset(args: string, settings: ChatSettings): string {
  const what = args.trim();
  switch (what) {
    case 'system':
      delete settings.system;
      return 'Cleared system message.';
    case 'format':
      delete settings.format;
      return 'Disabled format.';
    case '':
      return UNSET_HELP;
    default:
      return `Unknown command '/unset ${what}'. Type /unset for help`;
  }
}

function setSamplingParameter([name, ...values]: string[], settings: ChatSettings): string {
  if (!name || values.length === 0) return SET_HELP;
  const key = name.toLowerCase();
  if (key === 'num_ctx') return "Couldn't set parameter: num_ctx is fixed once the model is loaded (--max-model-len)";
  if (PARAMETER_TYPES[key] !== 'strings' && values.length > 1) {
    return `Couldn't set parameter: ${key} takes one value, got ${values.length}`;
  }
  const record: Record<string, ParameterValue> = {};
  let ignored: string | undefined;
  try {
    setParameter(
      record,
      key,
      PARAMETER_TYPES[key] === 'strings' ? values : values[0]!,
      (msg) => {
        throw new UserError(msg);
      },
      (msg) => (ignored = msg),
    );
    if (ignored) return ignored;
    const mapped = samplingFrom('ollama', record);
    const next = { ...settings.params, ...mapped };
    // num_predict -1 (or -2): no limit of its own.
    if (key === 'num_predict' && mapped.maxTokens === undefined) delete next.maxTokens;
    resolveSamplingParams(next);
    settings.params = next;
  } catch (err) {
    return `Couldn't set parameter: ${(err as Error).message}`;
  }
  return `Set parameter '${key}' to '${values.join(', ')}'`;
}
