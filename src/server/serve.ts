import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { chatTemplateOption, type TemplateText } from '../loader/chat-template.ts';
import { DEMO_MODEL_NAME, DEMO_MODEL_WARNING, ensureDemoModel } from '../loader/demo-model.ts';
import type { EngineOptions } from '../runner/load.ts';
import { modelsDir } from '../store/locations.ts';
import { resolveModel } from '../store/resolve.ts';
import { sweepUploads } from '../store/uploads.ts';
import { UserError } from '../util/errors.ts';
import { checkAdapterFor } from './adapter-check.ts';
import { buildApp } from './app.ts';
import type { ServeConfig } from './config.ts';
import { EngineModelSource } from './engine-source.ts';
import { adaptedEntry, type ModelEntry, ModelRegistry, modelName } from './models.ts';
import { catalogEntries, resolvedEntry, storeEntry } from './store-entry.ts';

export function pagodaVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const stderrLine = (line: string) => process.stderr.write(`${line}\n`);

/** The entry a `--model` value names: "demo", a folder, or a store / Hugging Face cache name. */
function entryFor(spec: string): ModelEntry {
  if (spec === DEMO_MODEL_NAME)
    return { name: DEMO_MODEL_NAME, path: ensureDemoModel(stderrLine), ref: DEMO_MODEL_NAME };
  const resolved = resolveModel(spec, { allowPaths: true });
  if (resolved.origin === 'path') return { name: modelName(resolved.path), path: resolved.path, ref: resolved.path };
  return resolvedEntry(resolved);
}

/**
 * `--model` values first (the demo model when none), pinned and loaded at start-up, then every other model the store
 * and the Hugging Face cache know, loaded on first use. Request names are matched against these entries only.
 */
export function resolveEntries(
  config: ServeConfig,
  chatTemplate?: string | TemplateText,
): { entries: ModelEntry[]; preload: ModelEntry[] } {
  // --chat-template is read once, here: a bad one fails before anything loads.
  const template = typeof chatTemplate === 'string' ? chatTemplateOption(chatTemplate) : chatTemplate;
  const given: ModelEntry[] = [];
  for (const spec of config.models.length ? config.models : [DEMO_MODEL_NAME]) {
    const entry = { ...entryFor(spec), ...(template && { chatTemplate: template }) };
    const clash = given.find((e) => e.name === entry.name && e.path !== entry.path);
    if (clash) {
      throw new UserError(
        `--model ${spec}: two models would be served as "${entry.name}" (${clash.path} and ${entry.path})`,
      );
    }
    if (!given.some((e) => e.name === entry.name)) given.push({ ...entry, pinned: true });
  }
  // vLLM's --served-model-name: the first model's public name, and more names it answers to.
  const [served, ...aliases] = config.servedModelNames;
  if (served !== undefined) {
    const taken = [served, ...aliases].find((n) => given.slice(1).some((g) => g.name === n));
    if (taken !== undefined)
      throw new UserError(`--served-model-name ${taken}: another --model is served as "${taken}"`);
    given[0] = { ...given[0]!, name: served, ...(aliases.length > 0 && { aliases }) };
  }
  // vLLM's --lora-modules: the first model with an adapter merged in, under the adapter's name, loaded on first use.
  const adapted = config.loraModules.map(({ name, folder }) => {
    if (given.some((g) => g.name === name || g.aliases?.includes(name))) {
      throw new UserError(`--lora-modules ${name}=${folder}: "${name}" is already a served model's name`);
    }
    const dir = resolve(folder);
    checkAdapterFor(given[0]!, dir, config);
    return adaptedEntry(given[0]!, name, dir);
  });
  const known = catalogEntries().filter((c) => ![...given, ...adapted].some((g) => g.name === c.name));
  return { entries: [...given, ...adapted, ...known], preload: given };
}

/** `app.listen`, with a busy, forbidden or unknown address said in one line. */
async function listen(app: ReturnType<typeof buildApp>['app'], config: ServeConfig): Promise<void> {
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${config.host}:${config.port}`;
    if (code === 'EADDRINUSE') {
      throw new UserError(
        `${where} is already in use (another pagoda or ollama serve?); choose one with --port or PAGODA_HOST`,
      );
    }
    if (code === 'EACCES') throw new UserError(`${where}: permission denied (ports below 1024 need privileges)`);
    const from = config.hostFrom ?? '--host';
    if (code === 'EADDRNOTAVAIL') throw new UserError(`${where}: no such address on this machine (${from})`);
    // A well-formed name (checked with the flags) that DNS does not know.
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      throw new UserError(`${from}: "${config.host}" is not a known host name (${code})`);
    }
    throw err;
  }
}

export interface RunningServer {
  url: string;
  /** Settles once every start-up model (`--model`) has loaded; rejects with the first that failed. */
  ready: Promise<void>;
  /** Stops accepting, lets in-flight requests finish within the grace period, then aborts the rest. */
  shutdown(): Promise<void>;
}

/** A server not yet listening: its app over the registry of models, and what loads the start-up (`--model`) ones. */
export interface AssembledServer {
  app: ReturnType<typeof buildApp>['app'];
  ctx: ReturnType<typeof buildApp>['ctx'];
  registry: ModelRegistry;
  log: pino.Logger;
  version: string;
  /** The start-up models not loaded yet. */
  loading(): readonly string[];
  /** Loads the start-up models in order (each said when ready); until then /health answers 503. */
  loadStartupModels(): Promise<void>;
}

/** The app over every model the server knows (`resolveEntries`), the start-up ones named but not loaded yet. */
export function assembleServer(
  config: ServeConfig,
  engineOptions: EngineOptions,
  say: (line: string) => void,
): AssembledServer {
  const log = pino({ level: config.logLevel }, pino.destination(2));
  const { entries, preload } = resolveEntries(config, engineOptions.chatTemplate);
  const source = new EngineModelSource(config, { ...engineOptions, log: say });
  const registry = new ModelRegistry(entries, source, {
    maxLoaded: config.maxLoadedModels,
    keepAliveMs: config.keepAliveMs,
    discover: storeEntry,
    catalog: catalogEntries,
    loadTimeoutMs: config.loadTimeoutMs,
    log: say,
  });
  const version = pagodaVersion();
  const starting = new Set(preload.map((e) => e.name));
  const { app, ctx } = buildApp(config, registry, log, version, () => [...starting]);
  const loadStartupModels = async () => {
    for (const entry of preload) {
      const t0 = performance.now();
      const m = (await registry.preload(entry)).model;
      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      say(
        `model ${entry.name} (${entry.path}) ready in ${seconds} s: backend ${m.backend}, context ${m.contextLength} tokens`,
      );
      if (entry.ref === DEMO_MODEL_NAME) say(`note: ${DEMO_MODEL_WARNING}`);
      starting.delete(entry.name);
    }
    const others = entries.length - preload.length;
    if (others > 0) say(`${others} more model(s) from the store, loaded on first use`);
  };
  return { app, ctx, registry, log, version, loading: () => [...starting], loadStartupModels };
}

/**
 * Listens first (a busy port fails at once, before any loading), then loads the start-up models in the background:
 * /health answers 503 until they are in, and a request for one waits for its load (up to the load timeout).
 */
export async function startServer(
  config: ServeConfig,
  engineOptions: EngineOptions,
  say: (line: string) => void,
): Promise<RunningServer> {
  const { app, ctx, registry, log, version, loading, loadStartupModels } = assembleServer(config, engineOptions, say);
  await listen(app, config);
  const swept = sweepUploads(modelsDir());
  if (swept.length) say(`removed ${swept.length} abandoned blob upload(s) from ${join(modelsDir(), 'uploads')}`);
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  const loadingNote = loading().length ? ` (loading ${loading().join(', ')})` : '';
  say(`pagoda ${version} listening on ${url}${config.apiKey ? ' (API key required)' : ''}${loadingNote}`);
  const local = ['127.0.0.1', 'localhost', '::1'].includes(config.host);
  if (!local && !config.apiKey) say('warning: listening beyond this machine with no API key (set PAGODA_API_KEY)');

  const ready = loadStartupModels();
  // The caller decides what a failed start-up model means (the CLI exits); until it looks, nothing is unhandled.
  ready.catch(() => {});

  let stopping: Promise<void> | null = null;
  const shutdown = () => {
    stopping ??= (async () => {
      const deadline = Date.now() + config.shutdownGraceMs;
      say(`shutting down: ${ctx.gate.size} request(s) in flight, waiting up to ${config.shutdownGraceMs / 1000} s`);
      const closing = app.close();
      while (ctx.gate.size > 0 && Date.now() < deadline) {
        app.server.closeIdleConnections();
        await new Promise((r) => setTimeout(r, 25));
      }
      if (ctx.gate.size > 0) {
        say(`grace period over: aborting ${ctx.gate.size} request(s)`);
        ctx.gate.abortAll('the server is shutting down');
        const hardStop = Date.now() + 2000;
        while (ctx.gate.size > 0 && Date.now() < hardStop) await new Promise((r) => setTimeout(r, 25));
      }
      app.server.closeAllConnections();
      await closing;
      await registry.shutdown();
      log.flush();
    })();
    return stopping;
  };
  return { url, ready, shutdown };
}
