import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import type { ModelInfo } from '../../src/server/model-info.ts';
import type { ModelEntry } from '../../src/server/models.ts';
import { FakeSource } from './fake-engine.ts';
import { startTestServer, type TestServer } from './harness.ts';

/** A folder model and a stored one made FROM a folder path, both under a server-side directory. */
class StoredSource extends FakeSource {
  async inspect(entry: ModelEntry): Promise<ModelInfo> {
    const info = await super.inspect(entry);
    if (entry.name !== 'stored:latest') return info;
    const manifest = {
      schemaVersion: 1 as const,
      source: { kind: 'hf-folder' as const, path: '/srv/secret/weights' },
      from: '/srv/secret/weights/',
      parameters: { temperature: 0.5 },
      system: 'Be brief.',
      messages: [],
      license: [],
      createdAt: '2026-01-01T00:00:00Z',
    };
    return { ...info, manifest };
  }
}

let server: TestServer;
before(async () => {
  server = await startTestServer(new StoredSource(), [
    { name: 'folder', path: '/srv/secret/folder', ref: '/srv/secret/folder' },
    { name: 'stored:latest', path: '/srv/secret/weights', ref: 'stored:latest' },
  ]);
});
after(() => server.close());

test('/api/show tells no server path: FROM is the served name, or the last part of a stored FROM path', async () => {
  const ollama = new Ollama({ host: server.url });
  const folder = await ollama.show({ model: 'folder' });
  assert.match(folder.modelfile, /^FROM folder$/m);
  const stored = await ollama.show({ model: 'stored' });
  assert.match(stored.modelfile, /^FROM weights$/m);
  assert.match(stored.modelfile, /^PARAMETER temperature 0.5$/m);
  for (const shown of [folder, stored]) assert.doesNotMatch(JSON.stringify(shown), /\/srv/);
});
