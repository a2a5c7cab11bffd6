import type { EngineStats } from '../../src/engine/types.ts';
import type { ServeConfig } from '../../src/server/config.ts';
import { FakeSource } from './fake-engine.ts';
import { startTestServer, type TestServer } from './harness.ts';

export const MODEL = 'fake';

export interface ServedModel extends TestServer {
  model: string;
  /** The model's engine stats (the model must have been loaded by a request). */
  stats(): EngineStats;
}

/** A server on the test model. */
export async function startServed(overrides: Partial<ServeConfig> = {}, tokenDelayMs = 1): Promise<ServedModel> {
  const source = new FakeSource({ tokenDelayMs });
  const server = await startTestServer(source, [{ name: MODEL, path: `/models/${MODEL}` }], overrides);
  return { ...server, model: MODEL, stats: () => source.engines.get(MODEL)!.stats() };
}
