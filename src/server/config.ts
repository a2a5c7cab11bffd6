import { isIP } from 'node:net';
import { type KvCacheType, kvCacheTypeFlags, parseKvCacheType } from '../primitives/kv-cache-type.ts';
import { modelsDir as storeDir } from '../store/locations.ts';
import { TOOL_CALL_PARSERS, type ToolCallFormat } from '../tools/tool-parser.ts';
import { UserError } from '../util/errors.ts';
import { THINK_REASONING_PARSERS } from './chat-output.ts';

/** Everything `pagoda serve` is configured with; resolved once from flags, then PAGODA_* / OLLAMA_* variables. */
export interface ServeConfig {
  host: string;
  /** Where `host` came from (--host, PAGODA_HOST or OLLAMA_HOST), for errors; null = the default. */
  hostFrom: string | null;
  port: number;
  /** `--model` paths or names, in the order given; the first is the default. */
  models: string[];
  /** `--served-model-name`: the first model's name in the APIs, then other names it answers to; empty = its own. */
  servedModelNames: string[];
  /** `--lora-modules`: served names of the first model with a LoRA adapter folder merged in. */
  loraModules: { name: string; folder: string }[];
  /** vLLM's /v1/load_lora_adapter and /v1/unload_lora_adapter answer (they read folders a request names). */
  runtimeLoraUpdating: boolean;
  /** `--load-format dummy`: random weights, into which no adapter merges. */
  dummyWeights: boolean;
  /** Concurrent sequences per model (the engine's max running sequences); null = the engine's default. */
  numParallel: number | null;
  flashAttention: 'auto' | 'on' | 'off';
  kvCacheType: KvCacheType;
  /** Tokens per sequence; null = the model's own maximum. */
  contextLength: number | null;
  /** How long an idle model stays loaded; -1 = forever, 0 = unload after each request. */
  keepAliveMs: number;
  maxLoadedModels: number;
  /** Requests admitted beyond the running ones; more get 503. */
  maxQueue: number;
  /** The model store folder. */
  modelsDir: string;
  apiKey: string | null;
  /** Allowed browser origins (glob `*`); empty = CORS off. */
  origins: string[];
  bodyLimitBytes: number;
  /** How long a client may take to send a request's headers; 0 = no limit. */
  headersTimeoutMs: number;
  /** How long a client may take to send a whole request, body included (not the answer); 0 = no limit. */
  requestTimeoutMs: number;
  /** How long SIGTERM waits for in-flight requests before aborting them. */
  shutdownGraceMs: number;
  /** How long a request waits for its model to finish loading before a 503; 0 = no limit. */
  loadTimeoutMs: number;
  /** Serve the web page at /ui (and redirect browsers from / to it). */
  ui: boolean;
  /** `--tool-call-parser`: the tool-call format of every served model, instead of the one its template suggests. */
  toolCallFormat: ToolCallFormat | null;
  /** `--response-role`: the role a chat answer names where the prompt asks for a new turn (vLLM's; default assistant). */
  responseRole: string;
  /** One log line per request (`--disable-log-requests` turns them off). */
  logRequests: boolean;
  /** The server log's pino level (`--uvicorn-log-level`, PAGODA_LOG_LEVEL; default info). */
  logLevel: string;
}

/** Command-line values; undefined = not given. */
export interface ServeFlags {
  host?: string;
  port?: string | number;
  model?: string[];
  servedModelName?: string[];
  loraModules?: string[];
  loadFormat?: string;
  numParallel?: string;
  flashAttention?: string;
  kvCacheType?: string;
  contextLength?: string;
  keepAlive?: string;
  maxLoadedModels?: string;
  maxQueue?: string;
  models?: string;
  apiKey?: string;
  origins?: string;
  bodyLimit?: string;
  headersTimeout?: string;
  requestTimeout?: string;
  shutdownGrace?: string;
  loadTimeout?: string;
  /** false = `--no-ui` given (commander sets true when it is absent, so true says nothing). */
  ui?: boolean;
  allowRuntimeLoraUpdating?: boolean;
  /** vLLM's spellings, resolved here with pagoda's own. */
  kvCacheDtype?: string;
  toolCallParser?: string;
  responseRole?: string;
  reasoningParser?: string;
  disableLogRequests?: boolean;
  enableLogRequests?: boolean;
  uvicornLogLevel?: string;
}

type Env = Record<string, string | undefined>;

/** A flag, else PAGODA_<NAME>, else OLLAMA_<NAME>, with the name of where it came from for error messages. */
function pick(
  flag: string | undefined,
  flagName: string,
  env: Env,
  name: string,
): { value: string; from: string } | null {
  if (flag !== undefined) return { value: flag, from: flagName };
  for (const prefix of ['PAGODA_', 'OLLAMA_']) {
    const v = env[prefix + name];
    if (v !== undefined && v !== '') return { value: v, from: prefix + name };
  }
  return null;
}

function int(v: { value: string; from: string } | null, fallback: number, min: number, max: number): number {
  if (!v) return fallback;
  const n = Number(v.value.trim());
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UserError(`${v.from}: "${v.value}" is not an integer in ${min}..${max}`);
  }
  return n;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Ollama's keep_alive: a number of seconds or a duration like "5m", "1h30m", "300ms"; negative = forever.
 * Returns milliseconds (-1 for forever) or null when the text is not a duration.
 */
export function parseDuration(v: string | number): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? (v < 0 ? -1 : Math.round(v * 1000)) : null;
  const s = v.trim();
  if (/^-?\d+(\.\d+)?$/.test(s)) return parseDuration(Number(s));
  const m = /^(-)?((\d+(\.\d+)?(ms|s|m|h))+)$/.exec(s);
  if (!m) return null;
  if (m[1]) return -1;
  let ms = 0;
  for (const part of m[2].matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(part[1]) * UNITS[part[2]];
  return Math.round(ms);
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  k: 1024,
  kb: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
};

/** Byte sizes like 1048576, "4mb", "2g". */
export function parseSize(v: { value: string; from: string }): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?b?)$/i.exec(v.value.trim());
  if (!m) throw new UserError(`${v.from}: "${v.value}" is not a size (expected bytes, or a number with k, m or g)`);
  return Math.round(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()]);
}

/** PAGODA_HOST as Ollama reads it: "host", "host:port", ":port", "http://host:port", "[::1]:port". */
export function parseHost(value: string, from: string): { host: string; port: number | null } {
  let s = value
    .trim()
    .replace(/^https?:\/\//, '')
    .replace(/\/+$/, '');
  let port: number | null = null;
  // A bare IP address is all host (`2001:db8::1:80` is an IPv6 address, as the client commands read it).
  const m = isIP(s) ? null : /^(.*?)(?::(\d+))?$/.exec(s);
  if (m?.[2] !== undefined && !m[1].endsWith(':')) {
    s = m[1];
    port = Number(m[2]);
    if (port > 65535) throw new UserError(`${from}: port ${port} is out of range (expected 0..65535)`);
  }
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  // Refused here, not as a listen error once the models are in place: only an IP address or a DNS name can be bound.
  if (s && !isIP(s) && !/^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/i.test(s)) {
    throw new UserError(`${from}: "${value}" is not a host, host:port, :port or URL`);
  }
  return { host: s || '127.0.0.1', port };
}

/** A timeout in milliseconds: a duration, 0 or a negative one = no limit. */
function timeout(v: { value: string; from: string } | null, fallback: number): number {
  if (!v) return fallback;
  const ms = parseDuration(v.value);
  if (ms === null) throw new UserError(`${v.from}: "${v.value}" is not a duration (e.g. 30s, 2m, 0 for no limit)`);
  return Math.max(ms, 0);
}

const BOOLEAN: Record<string, boolean> = { '1': true, true: true, '0': false, false: false };

/** An on/off setting: 1, 0, true or false. */
function onOff(v: { value: string; from: string } | null): boolean {
  if (!v) return false;
  const on = BOOLEAN[v.value.trim().toLowerCase()];
  if (on === undefined) throw new UserError(`${v.from}: "${v.value}" is not one of 1, 0, true, false`);
  return on;
}

const FLASH: Record<string, ServeConfig['flashAttention']> = {
  auto: 'auto',
  '1': 'on',
  true: 'on',
  on: 'on',
  '0': 'off',
  false: 'off',
  off: 'off',
};

export function resolveServeConfig(flags: ServeFlags, env: Env = process.env): ServeConfig {
  const hostValue = pick(flags.host, '--host', env, 'HOST');
  const parsedHost = hostValue ? parseHost(hostValue.value, hostValue.from) : { host: '127.0.0.1', port: null };
  const portFlag = flags.port === undefined ? null : { value: String(flags.port), from: '--port' };
  const port = int(portFlag, parsedHost.port ?? 11434, 0, 65535);

  const flash = pick(flags.flashAttention, '--flash-attention', env, 'FLASH_ATTENTION');
  const flashAttention = flash ? FLASH[flash.value.trim().toLowerCase()] : 'auto';
  if (!flashAttention) throw new UserError(`${flash!.from}: "${flash!.value}" is not one of auto, 1, 0`);

  const kv = pick(undefined, '--kv-cache-type', env, 'KV_CACHE_TYPE');
  const kvCacheType =
    kvCacheTypeFlags(flags.kvCacheType, flags.kvCacheDtype) ?? (kv ? parseKvCacheType(kv.value, kv.from) : 'auto');
  if (flags.reasoningParser !== undefined) checkReasoningParser(flags.reasoningParser);
  if (flags.disableLogRequests && flags.enableLogRequests) {
    throw new UserError('--disable-log-requests and --enable-log-requests disagree: give one of them');
  }

  const numParallel = pick(flags.numParallel, '--num-parallel', env, 'NUM_PARALLEL');
  const ctx = pick(flags.contextLength, '--context-length', env, 'CONTEXT_LENGTH');
  const keep = pick(flags.keepAlive, '--keep-alive', env, 'KEEP_ALIVE');
  const keepAliveMs = keep ? parseDuration(keep.value) : 5 * 60_000;
  if (keepAliveMs === null)
    throw new UserError(`${keep!.from}: "${keep!.value}" is not a duration (e.g. 5m, 1h, 30s, -1)`);

  const originsValue = pick(flags.origins, '--origins', env, 'ORIGINS');
  const grace = pick(flags.shutdownGrace, '--shutdown-grace', env, 'SHUTDOWN_GRACE');
  const graceMs = grace ? parseDuration(grace.value) : 30_000;
  if (graceMs === null || graceMs < 0) throw new UserError(`${grace!.from}: "${grace!.value}" is not a duration`);
  const body = pick(flags.bodyLimit, '--body-limit', env, 'BODY_LIMIT');
  const headersValue = pick(flags.headersTimeout, '--headers-timeout', env, 'HEADERS_TIMEOUT');
  const requestValue = pick(flags.requestTimeout, '--request-timeout', env, 'REQUEST_TIMEOUT');
  const headersTimeoutMs = timeout(headersValue, 30_000);
  const requestTimeoutMs = timeout(requestValue, 60_000);
  if (requestTimeoutMs > 0 && headersTimeoutMs > requestTimeoutMs) {
    throw new UserError(
      `${headersValue?.from ?? requestValue!.from}: the headers timeout (${headersTimeoutMs} ms) must be at most ` +
        `the request timeout (${requestTimeoutMs} ms), which includes the headers`,
    );
  }
  const loadTimeoutMs = timeout(pick(flags.loadTimeout, '--load-timeout', env, 'LOAD_TIMEOUT'), 5 * 60_000);
  const noUi = onOff(pick(flags.ui === false ? '1' : undefined, '--no-ui', env, 'NO_UI'));
  const runtimeLora = pick(
    flags.allowRuntimeLoraUpdating ? '1' : undefined,
    '--allow-runtime-lora-updating',
    env,
    'ALLOW_RUNTIME_LORA_UPDATING',
  );

  return {
    host: parsedHost.host,
    hostFrom: hostValue?.from ?? null,
    port,
    models: flags.model ?? [],
    servedModelNames: servedNames(
      pick(flags.servedModelName?.join(' '), '--served-model-name', env, 'SERVED_MODEL_NAME'),
    ),
    loraModules: (flags.loraModules ?? []).map(loraModule),
    runtimeLoraUpdating: onOff(runtimeLora),
    dummyWeights: flags.loadFormat === 'dummy',
    numParallel: numParallel ? int(numParallel, 0, 1, 4096) : null,
    flashAttention,
    kvCacheType,
    contextLength: ctx ? int(ctx, 0, 1, 1 << 24) : null,
    keepAliveMs,
    maxLoadedModels: int(pick(flags.maxLoadedModels, '--max-loaded-models', env, 'MAX_LOADED_MODELS'), 3, 1, 64),
    maxQueue: int(pick(flags.maxQueue, '--max-queue', env, 'MAX_QUEUE'), 512, 0, 1 << 20),
    modelsDir: flags.models ?? storeDir(env),
    apiKey: pick(flags.apiKey, '--api-key', env, 'API_KEY')?.value ?? null,
    origins: originsValue
      ? originsValue.value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [],
    bodyLimitBytes: body ? parseSize(body) : 4 * 1024 * 1024,
    headersTimeoutMs,
    requestTimeoutMs,
    shutdownGraceMs: graceMs,
    loadTimeoutMs,
    ui: !noUi,
    toolCallFormat: flags.toolCallParser === undefined ? null : toolCallFormat(flags.toolCallParser),
    responseRole: responseRole(flags.responseRole),
    logRequests: !flags.disableLogRequests,
    logLevel: logLevel(flags.uvicornLogLevel, env.PAGODA_LOG_LEVEL),
  };
}

/** `--response-role ROLE`: any non-empty name (vLLM takes any); assistant where absent. */
function responseRole(role: string | undefined): string {
  if (role === undefined) return 'assistant';
  if (!role.trim()) throw new UserError('--response-role: expected a role name, got an empty one');
  return role.trim();
}

/** `--tool-call-parser NAME`: the format pagoda has for vLLM's parser of that name. */
function toolCallFormat(name: string): ToolCallFormat {
  const format = TOOL_CALL_PARSERS[name.trim()];
  if (!format) {
    throw new UserError(
      `--tool-call-parser ${name}: pagoda has no such format (expected one of ${Object.keys(TOOL_CALL_PARSERS).join(', ')})`,
    );
  }
  return format;
}

/** `--reasoning-parser NAME`: accepted for the `<think>` parsers, whose reading pagoda always does; others refused. */
function checkReasoningParser(name: string): void {
  if (!(THINK_REASONING_PARSERS as readonly string[]).includes(name.trim())) {
    throw new UserError(
      `--reasoning-parser ${name}: pagoda reads only <think>…</think> reasoning (${THINK_REASONING_PARSERS.join(', ')})`,
    );
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** uvicorn's level names as pino's. */
const UVICORN_LEVELS: Record<string, string> = {
  critical: 'fatal',
  error: 'error',
  warning: 'warn',
  info: 'info',
  debug: 'debug',
  trace: 'trace',
};

/** The server log's level: --uvicorn-log-level, else PAGODA_LOG_LEVEL, else info (pino's own refusal names neither). */
function logLevel(uvicorn: string | undefined, variable: string | undefined): string {
  if (uvicorn !== undefined) {
    const level = UVICORN_LEVELS[uvicorn.trim().toLowerCase()];
    if (!level) {
      throw new UserError(`--uvicorn-log-level ${uvicorn}: expected one of ${Object.keys(UVICORN_LEVELS).join(', ')}`);
    }
    return level;
  }
  if (!variable) return 'info';
  if (!LOG_LEVELS.includes(variable)) {
    throw new UserError(`PAGODA_LOG_LEVEL ${variable}: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  return variable;
}

/** `--served-model-name` names, separated by spaces or commas. */
function servedNames(v: { value: string; from: string } | null): string[] {
  return v ? v.value.split(/[\s,]+/).filter(Boolean) : [];
}

/** A `--lora-modules` value, vLLM's NAME=FOLDER: the served name and the adapter folder. */
function loraModule(spec: string): { name: string; folder: string } {
  const at = spec.indexOf('=');
  const name = spec.slice(0, at).trim();
  const folder = spec.slice(at + 1).trim();
  if (at <= 0 || !name || !folder) throw new UserError(`--lora-modules ${spec}: expected NAME=FOLDER`);
  return { name, folder };
}
