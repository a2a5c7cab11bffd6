import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import { resolveServeConfig } from '../../src/server/config.ts';
import { type RunningServer, startServer } from '../../src/server/serve.ts';
import { resolveModel } from '../../src/store/resolve.ts';
import { FakeRegistry } from '../helpers/fake-registry.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { addToOllamaStore, EMPTY_GGUF, treeState } from '../helpers/ollama-store.ts';

const QWEN = join(projectRoot, 'test/fixtures/models/tiny-qwen2');
let root = '';
let server: RunningServer;
let ollama: Ollama;
const registry = new FakeRegistry();
const savedEnv = { ...process.env };

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-ollama-api-'));
  await registry.start();
  registry.add('library/llama3.2:latest', [
    { kind: 'model', content: EMPTY_GGUF },
    { kind: 'template', content: '{{ .Prompt }}' },
  ]);
  Object.assign(process.env, {
    PAGODA_MODELS: join(root, 'models'),
    HF_HUB_CACHE: join(root, 'hf'),
    OLLAMA_MODELS: join(root, 'ollama'),
    PAGODA_REGISTRY: registry.endpoint,
  });
  addToOllamaStore(join(root, 'ollama'), 'registry.ollama.ai/library/phi3/mini', [
    { kind: 'model', content: EMPTY_GGUF },
    { kind: 'system', content: 'Be kind.' },
  ]);
  const config = { ...resolveServeConfig({ port: 0, host: '127.0.0.1' }, {}), models: [QWEN] };
  server = await startServer(config, { log: () => {} }, () => {});
  ollama = new Ollama({ host: server.url });
});

after(async () => {
  await server?.shutdown();
  await registry.stop();
  process.env = savedEnv;
  rmSync(root, { recursive: true, force: true });
});

test('the ollama client pulls a registry name into the store, and deletes it again', async () => {
  const events = [];
  for await (const e of await ollama.pull({ model: 'llama3.2', stream: true })) events.push(e);
  assert.equal(events[0]!.status, 'pulling manifest');
  assert.equal(events.at(-1)!.status, 'success');
  assert.equal(resolveModel('llama3.2').origin, 'store');
  assert.deepEqual(await ollama.delete({ model: 'llama3.2' }), { status: 'success' });
  assert.throws(() => resolveModel('llama3.2'), /not found/);
  await assert.rejects(ollama.pull({ model: 'absent' }), (err: { status_code: number; error: string }) => {
    assert.equal(err.status_code, 404);
    assert.equal(err.error, `absent:latest: manifest not found in the registry at ${registry.endpoint} (404)`);
    return true;
  });
});

test("Ollama's own models are read-only: delete is refused in one line", async () => {
  const before = treeState(join(root, 'ollama'));
  await assert.rejects(ollama.delete({ model: 'phi3:mini' }), (err: { status_code: number; error: string }) => {
    assert.equal(err.status_code, 400);
    assert.equal(
      err.error,
      `phi3:mini is in Ollama's store (${join(root, 'ollama')}), which pagoda only reads; remove it with \`ollama rm phi3:mini\``,
    );
    return true;
  });
  assert.deepEqual(treeState(join(root, 'ollama')), before);
});

test('create with quantize is refused, saying why', async () => {
  await assert.rejects(
    ollama.create({ model: 'small', from: 'phi3:mini', quantize: 'q4_K_M' }),
    (err: { status_code: number; error: string }) => {
      assert.equal(err.status_code, 400);
      assert.match(err.error, /^quantize q4_K_M: pagoda cannot quantize models yet \(it has no GGUF quantizer\)/);
      return true;
    },
  );
  // Without quantize, a model over Ollama's blob is created (no weights copied).
  assert.equal((await ollama.create({ model: 'kinder', from: 'phi3:mini', system: 'Be kinder.' })).status, 'success');
  const created = resolveModel('kinder');
  assert.equal(created.path, resolveModel('phi3:mini').path);
  assert.equal(created.manifest?.system, 'Be kinder.');
});
