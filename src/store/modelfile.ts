import { UserError } from '../util/errors.ts';
import type { AdapterSource, ChatMessage, ParameterValue } from './manifest.ts';

/** A parsed Modelfile (Ollama's format). */
export interface Modelfile {
  from: string;
  fromLine: number;
  parameters: Record<string, ParameterValue>;
  system?: string;
  template?: string;
  templateLine?: number;
  messages: ChatMessage[];
  license: string[];
  /** ADAPTER: a PEFT LoRA adapter folder, as written. */
  adapter?: string;
  adapterLine?: number;
  /** `file:line: ...` for each PARAMETER accepted and ignored (see IGNORED_SAMPLING). */
  warnings?: string[];
}

/** PARAMETER names pagoda honours, with their types (the sampling and context options of Ollama). */
export const PARAMETER_TYPES: Record<string, 'int' | 'float' | 'strings'> = {
  num_ctx: 'int',
  num_predict: 'int',
  temperature: 'float',
  top_k: 'int',
  top_p: 'float',
  min_p: 'float',
  seed: 'int',
  stop: 'strings',
  repeat_penalty: 'float',
  presence_penalty: 'float',
  frequency_penalty: 'float',
  repeat_last_n: 'int',
  typical_p: 'float',
  mirostat: 'int',
  mirostat_tau: 'float',
  mirostat_eta: 'float',
};

/**
 * Ollama options that tune llama.cpp's runner (threads, GPU layers, memory mapping, context shifting): accepted and
 * ignored, in requests and in a Modelfile's PARAMETER.
 */
export const RUNNER_OPTIONS = [
  'num_thread',
  'num_gpu',
  'main_gpu',
  'num_batch',
  'num_keep',
  'use_mmap',
  'use_mlock',
  'low_vram',
  'f16_kv',
  'vocab_only',
  'logits_all',
  'numa',
  'penalize_newline',
] as const;

/**
 * Sampling options of older Modelfiles and clients that no runner implements any more (tail-free sampling left
 * llama.cpp): accepted with a warning in a Modelfile, at debug level in a request, and ignored, as Ollama does.
 */
export const IGNORED_SAMPLING = ['tfs_z'] as const;

/** Every option a request or a Modelfile may carry that changes nothing here. */
export const IGNORED_OPTIONS = [...RUNNER_OPTIONS, ...IGNORED_SAMPLING] as const;

const ROLES = new Set(['system', 'user', 'assistant']);

/** Parses Modelfile text; every error names `file:line`. */
export function parseModelfile(text: string, file = 'Modelfile'): Modelfile {
  const out: Omit<Modelfile, 'from' | 'fromLine'> & { from?: string; fromLine?: number } = {
    parameters: {},
    messages: [],
    license: [],
    warnings: [],
  };
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const fail = (msg: string): never => {
      throw new UserError(`${file}:${lineNo}: ${msg}`);
    };
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(line);
    if (!m) fail(`expected an instruction (FROM, PARAMETER, SYSTEM, TEMPLATE, MESSAGE, LICENSE), got "${line}"`);
    const instruction = m![1]!.toUpperCase();
    // Arguments may be """multi-line""" or "quoted"; read further lines until the quote closes.
    const readArg = (rest: string): string => {
      const triple = rest.startsWith('"""');
      if (!triple && !rest.startsWith('"')) return rest.trim();
      const quote = triple ? '"""' : '"';
      let body = rest.slice(quote.length);
      for (;;) {
        const close = body.indexOf(quote);
        if (close >= 0) {
          if (body.slice(close + quote.length).trim()) fail(`unexpected text after the closing ${quote}`);
          return triple ? body.slice(0, close) : unquote(body.slice(0, close));
        }
        if (++i >= lines.length) throw new UserError(`${file}:${lineNo}: unterminated ${quote}`);
        body += `\n${lines[i]}`;
      }
    };
    const rest = m![2] ?? '';
    switch (instruction) {
      case 'FROM':
        if (out.from !== undefined) fail('FROM given twice');
        out.from = readArg(rest);
        out.fromLine = lineNo;
        if (!out.from) fail('FROM needs a model name or path');
        break;
      case 'PARAMETER': {
        const p = /^(\S+)\s+([\s\S]+)$/.exec(rest);
        if (!p) fail('PARAMETER needs a name and a value');
        const [, key, raw] = p!;
        setParameter(out.parameters, key!.toLowerCase(), readArg(raw!), fail, (msg) =>
          out.warnings!.push(`${file}:${lineNo}: ${msg}`),
        );
        break;
      }
      case 'SYSTEM':
        out.system = readArg(rest);
        break;
      case 'TEMPLATE':
        out.templateLine = lineNo;
        out.template = readArg(rest);
        break;
      case 'MESSAGE': {
        const p = /^(\S+)\s+([\s\S]+)$/.exec(rest);
        if (!p) fail('MESSAGE needs a role and content');
        const role = p![1]!.toLowerCase();
        if (!ROLES.has(role)) fail(`MESSAGE role "${p![1]}" is not one of system, user, assistant`);
        out.messages.push({ role, content: readArg(p![2]!) });
        break;
      }
      case 'LICENSE':
        out.license.push(readArg(rest));
        break;
      case 'ADAPTER':
        if (out.adapter !== undefined) fail('one ADAPTER only');
        out.adapterLine = lineNo;
        out.adapter = readArg(rest);
        break;
      default:
        fail(`unknown instruction ${m![1]} (expected FROM, ADAPTER, PARAMETER, SYSTEM, TEMPLATE, MESSAGE or LICENSE)`);
    }
  }
  if (out.from === undefined) throw new UserError(`${file}: no FROM line (FROM names the base model)`);
  return out as Modelfile;
}

function unquote(s: string): string {
  return s.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** Type-checks one parameter; `stop` may repeat and accumulates. One pagoda ignores is left out (`warn` says so). */
export function setParameter(
  params: Record<string, ParameterValue>,
  key: string,
  raw: string | number | boolean | string[],
  fail: (msg: string) => never,
  warn: (msg: string) => void = () => {},
): void {
  if ((RUNNER_OPTIONS as readonly string[]).includes(key)) return;
  if ((IGNORED_SAMPLING as readonly string[]).includes(key)) {
    warn(`PARAMETER ${key}: pagoda does not implement it; ignored`);
    return;
  }
  const type = PARAMETER_TYPES[key];
  if (!type) {
    fail(
      `unknown parameter "${key}" (pagoda knows ${Object.keys(PARAMETER_TYPES).join(', ')}; ` +
        `it accepts and ignores ${[...IGNORED_SAMPLING, ...RUNNER_OPTIONS].join(', ')})`,
    );
  }
  if (type === 'strings') {
    const values = Array.isArray(raw) ? raw.map(String) : [String(raw)];
    params[key] = [...((params[key] as string[] | undefined) ?? []), ...values];
    return;
  }
  const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (String(raw).trim() === '' || !Number.isFinite(n)) fail(`parameter ${key} must be a number, got "${raw}"`);
  if (type === 'int' && !Number.isInteger(n)) fail(`parameter ${key} must be an integer, got "${raw}"`);
  params[key] = n;
}

/** Writes a manifest back out as a Modelfile (for `show --modelfile` and /api/show). */
export function formatModelfile(m: {
  from: string;
  parameters: Record<string, ParameterValue>;
  system?: string;
  template?: string;
  messages: ChatMessage[];
  license: string[];
  adapter?: AdapterSource;
}): string {
  const quote = (s: string) => `"""${s}"""`;
  const lines = [`FROM ${m.from}`];
  // An uploaded adapter has no path of its own to show: its files are named instead.
  if (m.adapter?.kind === 'hf-folder') lines.push(`ADAPTER ${m.adapter.path}`);
  if (m.adapter?.kind === 'blob-folder') lines.push(`# ADAPTER uploaded: ${Object.keys(m.adapter.files).join(', ')}`);
  if (m.template !== undefined) lines.push(`TEMPLATE ${quote(m.template)}`);
  if (m.system !== undefined) lines.push(`SYSTEM ${quote(m.system)}`);
  lines.push(...formatParameters(m.parameters).map((l) => `PARAMETER ${l}`));
  for (const msg of m.messages) lines.push(`MESSAGE ${msg.role} ${quote(msg.content)}`);
  for (const l of m.license) lines.push(`LICENSE ${quote(l)}`);
  return `${lines.join('\n')}\n`;
}

/** `name value` lines as Ollama's /api/show `parameters` field prints them. */
export function formatParameters(params: Record<string, ParameterValue>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    for (const item of Array.isArray(v) ? v : [v])
      out.push(`${k} ${typeof item === 'string' ? JSON.stringify(item) : item}`);
  }
  return out;
}
