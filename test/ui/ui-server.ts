import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServeConfig, type ServeConfig } from '../../src/server/config.ts';
import { startServer } from '../../src/server/serve.ts';

export interface UiServer {
  url: string;
  /** The store and Hugging Face cache folders' parent (a fresh temporary folder). */
  root: string;
  stop(): Promise<void>;
}

/**
 * `pagoda serve` as a user starts it, with an empty store and Hugging Face cache of its own (pulls go to
 * `hubEndpoint`, e.g. the fake Hub) and `models` given as --model.
 */
export async function startUiServer(
  models: string[],
  overrides: Partial<ServeConfig> = {},
  hubEndpoint = 'http://127.0.0.1:9',
): Promise<UiServer> {
  const root = mkdtempSync(join(tmpdir(), 'pagoda-ui-'));
  const saved = { ...process.env };
  Object.assign(process.env, {
    PAGODA_MODELS: join(root, 'models'),
    HF_HUB_CACHE: join(root, 'hf'),
    HF_ENDPOINT: hubEndpoint,
    PAGODA_LOG_LEVEL: 'warn',
  });
  const config = { ...resolveServeConfig({ port: 0, host: '127.0.0.1' }, {}), models, ...overrides };
  const server = await startServer(config, { log: () => {} }, () => {});
  await server.ready;
  return {
    url: server.url,
    root,
    async stop() {
      await server.shutdown();
      process.env = saved;
      rmSync(root, { recursive: true, force: true });
    },
  };
}
