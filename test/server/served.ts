import { join } from 'node:path';
import type { EngineStats } from '../../src/engine/types.ts';
import type { EngineOptions } from '../../src/runner/load.ts';
import { resolveServeConfig, type ServeConfig } from '../../src/server/config.ts';
import { EngineModelSource } from '../../src/server/engine-source.ts';
import type { ModelSource } from '../../src/server/models.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { FakeSource } from './fake-engine.ts';
import { startTestServer, type TestServer } from './harness.ts';

/** The fixture model the acceptance tests serve: a real engine on the CPU backend. */
export const MODEL = 'tiny-llama';
export const MODEL_DIR = join(projectRoot, 'test', 'fixtures', 'models', MODEL);

export interface ServedModel extends TestServer {
  model: string;
  /** The model's engine stats (the model must have been loaded by a request). */
  stats(): EngineStats;
}

/**
 * A server on tiny-llama with the real engine (engine options such as a small KV cache may be given);
 * `fakeTokenDelayMs` swaps in the test double, for tests that need slow, evenly paced tokens (queue limits).
 */
export async function startServed(
  overrides: Partial<ServeConfig> = {},
  fakeTokenDelayMs?: number,
  engineOptions: EngineOptions = {},
): Promise<ServedModel> {
  const config = { ...resolveServeConfig({}, {}), ...overrides };
  const source: ModelSource =
    fakeTokenDelayMs === undefined
      ? new EngineModelSource(config, { ...engineOptions, log: () => {} })
      : new FakeSource({ tokenDelayMs: fakeTokenDelayMs }, 256, config.numParallel ?? 64);
  const server = await startTestServer(source, [{ name: MODEL, path: MODEL_DIR, ref: MODEL_DIR }], config);
  const stats = () => {
    const resident = server.ctx.registry.resident().find((r) => r.entry.name === MODEL);
    if (!resident) throw new Error(`${MODEL} is not loaded`);
    return resident.model.engine.stats();
  };
  return { ...server, model: MODEL, stats };
}
