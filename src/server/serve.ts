import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { DEMO_MODEL_NAME, DEMO_MODEL_WARNING, ensureDemoModel } from '../loader/demo-model.ts';
import type { EngineOptions } from '../runner/load.ts';
import { UserError } from '../util/errors.ts';
import { buildApp } from './app.ts';
import type { ServeConfig } from './config.ts';
import { EngineModelSource } from './engine-source.ts';
import { type ModelEntry, ModelRegistry, modelName } from './models.ts';

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
/** A store name: one path segment of ordinary characters (so joining it to the store folder stays inside it). */
const STORE_NAME = /^(?!\.{1,2}$)[\w.-]{1,200}$/;

export function pagodaVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Models in the store folder: its sub-folders that hold a config.json. */
function storeEntries(modelsDir: string): ModelEntry[] {
  if (!isDir(modelsDir)) return [];
  return readdirSync(modelsDir)
    .filter((name) => STORE_NAME.test(name) && existsSync(join(modelsDir, name, 'config.json')))
    .map((name) => ({ name, path: join(modelsDir, name) }));
}

/** `--model` values (folders, store names or "demo") first, then the rest of the store; "demo" when none given. */
export function resolveEntries(config: ServeConfig): {
  entries: ModelEntry[];
  preload: ModelEntry[];
  demoPath: string | null;
} {
  const given: ModelEntry[] = [];
  let demoPath: string | null = null;
  const demo = () => {
    demoPath ??= ensureDemoModel();
    return { name: DEMO_MODEL_NAME, path: demoPath };
  };
  for (const spec of config.models.length ? config.models : [DEMO_MODEL_NAME]) {
    let entry: ModelEntry;
    if (spec === DEMO_MODEL_NAME) entry = demo();
    else if (isDir(spec)) entry = { name: modelName(spec), path: resolve(spec) };
    else if (STORE_NAME.test(spec) && isDir(join(config.modelsDir, spec)))
      entry = { name: spec, path: join(config.modelsDir, spec) };
    else
      throw new UserError(
        `--model ${spec}: no such model folder, and no model "${spec}" in the store ${config.modelsDir}`,
      );
    const clash = given.find((e) => e.name === entry.name && e.path !== entry.path);
    if (clash)
      throw new UserError(
        `--model ${spec}: two models would be served as "${entry.name}" (${clash.path} and ${entry.path})`,
      );
    if (!given.some((e) => e.name === entry.name)) given.push(entry);
  }
  const rest = storeEntries(config.modelsDir).filter((e) => !given.some((g) => g.name === e.name));
  return { entries: [...given, ...rest], preload: given.slice(0, config.maxLoadedModels), demoPath };
}

export interface RunningServer {
  url: string;
  /** Stops accepting, lets in-flight requests finish within the grace period, then aborts the rest. */
  shutdown(): Promise<void>;
}

/** Loads the given models, listens, and prints where, which models, the backend and each KV cache size. */
export async function startServer(
  config: ServeConfig,
  engineOptions: EngineOptions,
  say: (line: string) => void,
): Promise<RunningServer> {
  const log = pino({ level: process.env.PAGODA_LOG_LEVEL ?? 'info' }, pino.destination(2));
  const { entries, preload, demoPath } = resolveEntries(config);
  const source = new EngineModelSource(config, { ...engineOptions, log: say }, demoPath);
  const registry = new ModelRegistry(entries, source, {
    maxLoaded: config.maxLoadedModels,
    keepAliveMs: config.keepAliveMs,
  });
  const version = pagodaVersion();
  const { app, ctx } = buildApp(config, registry, log, version);

  for (const entry of preload) {
    const lease = await registry.acquire(entry);
    const m = lease.resident.model;
    say(`model ${entry.name} (${entry.path}): backend ${m.backend}, context ${m.contextLength} tokens`);
    if (entry.path === demoPath) say(`note: ${DEMO_MODEL_WARNING}`);
    lease.release();
  }
  const others = entries.length - preload.length;
  if (others > 0) say(`${others} more model(s) in ${config.modelsDir}, loaded on first use`);

  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  say(`pagoda ${version} listening on ${url}${config.apiKey ? ' (API key required)' : ''}`);

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
  return { url, shutdown };
}
