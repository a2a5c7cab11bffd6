import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { buildApp } from '../src/server/app.ts';
import { resolveServeConfig, type ServeConfig } from '../src/server/config.ts';
import { EngineModelSource } from '../src/server/engine-source.ts';
import { ModelRegistry } from '../src/server/models.ts';

/** The project root, where bench/RESULTS.md and the fixture models are. */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The serving benchmarks' command line: an optional model folder (default tiny-llama) and `--name number` flags. */
export function serveBenchArgs(argv: readonly string[]) {
  return {
    modelDir: resolve(
      argv.find((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--')) ??
        join(root, 'test/fixtures/models/tiny-llama'),
    ),
    flag(name: string, fallback: number): number {
      const i = argv.indexOf(name);
      return i >= 0 ? Number(argv[i + 1]) : fallback;
    },
  };
}

/**
 * `pagoda serve` on a loopback port with one model, loaded and held (the lease) until `close()`; what is measured
 * is the server as users run it.
 */
export async function startBenchServer(modelDir: string, overrides: Partial<ServeConfig> = {}) {
  const config = { ...resolveServeConfig({}, {}), port: 0, ...overrides };
  const name = basename(modelDir);
  const entry = { name, path: modelDir, ref: modelDir };
  const registry = new ModelRegistry([entry], new EngineModelSource(config, { log: () => {} }), {
    maxLoaded: 1,
    keepAliveMs: -1,
  });
  const { app } = buildApp(config, registry, pino({ level: 'silent' }), 'bench');
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const lease = await registry.acquire(entry);
  return {
    name,
    url,
    model: lease.resident.model,
    async close() {
      lease.release();
      await app.close();
      await registry.shutdown();
    },
  };
}
