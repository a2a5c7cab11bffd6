import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import { resolveServeConfig } from '../../src/server/config.ts';
import { type RunningServer, resolveEntries, startServer } from '../../src/server/serve.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { addToHubCache, readModelFolder } from '../helpers/hf-cache.ts';

const fixture = (name: string) => join(projectRoot, 'test/fixtures/models', name);
const GIVEN = ['tiny-llama', 'tiny-qwen2', 'tiny-mistral', 'tiny-gpt2'];

let root = '';
let server: RunningServer;
let ollama: Ollama;
const savedEnv = { ...process.env };
// One model loaded on demand at most, idle ones unloaded after 100 ms, and four named at start-up.
const config = {
  ...resolveServeConfig({ port: 0, host: '127.0.0.1', maxLoadedModels: '1', keepAlive: '100ms' }, {}),
  models: GIVEN.map(fixture),
};

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-pinned-'));
  Object.assign(process.env, {
    PAGODA_MODELS: join(root, 'models'),
    HF_HUB_CACHE: join(root, 'hf'),
    PAGODA_LOG_LEVEL: 'silent',
  });
  addToHubCache(join(root, 'hf'), 'pagoda-test/tiny-qwen3', readModelFolder(fixture('tiny-qwen3')));
  server = await startServer(config, { log: () => {} }, () => {});
  await server.ready;
  ollama = new Ollama({ host: server.url });
});

after(async () => {
  await server?.shutdown();
  process.env = savedEnv;
  rmSync(root, { recursive: true, force: true });
});

const loaded = async () => (await ollama.ps()).models.map((m) => m.name).sort();

test('every --model is pinned and preloaded, past the loaded-model limit', () => {
  const { entries, preload } = resolveEntries(config);
  assert.deepEqual(
    preload.map((e) => e.name),
    GIVEN,
  );
  assert.ok(preload.every((e) => e.pinned));
  assert.deepEqual(
    entries.filter((e) => !e.pinned).map((e) => e.name),
    ['pagoda-test/tiny-qwen3:latest'],
  );
});

test('pinned models stay loaded past their keep-alive and outside the limit; others come and go', async () => {
  assert.deepEqual(await loaded(), [...GIVEN].sort());
  await ollama.generate({
    model: 'pagoda-test/tiny-qwen3',
    prompt: 'hi',
    options: { num_predict: 2 },
    keep_alive: '1s',
  });
  assert.deepEqual(await loaded(), [...GIVEN, 'pagoda-test/tiny-qwen3:latest'].sort());
  await ollama.generate({ model: 'tiny-llama', prompt: 'hi', options: { num_predict: 2 }, keep_alive: '10ms' });
  // Wait for the on-demand model's keep-alive to unload it; the pinned ones, idle as long, stay.
  let now = await loaded();
  for (const end = Date.now() + 5000; now.length > GIVEN.length && Date.now() < end; now = await loaded()) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(now, [...GIVEN].sort(), 'only the model loaded on demand was unloaded');
  // An explicit keep_alive 0 still unloads a pinned model (Ollama's way to free its memory); it loads again on use.
  const stop = await ollama.generate({ model: 'tiny-gpt2', prompt: '', keep_alive: 0 });
  assert.equal(stop.done_reason, 'unload');
  assert.deepEqual(await loaded(), GIVEN.filter((m) => m !== 'tiny-gpt2').sort());
  await ollama.generate({ model: 'tiny-gpt2', prompt: 'hi', options: { num_predict: 1 } });
  assert.deepEqual(await loaded(), [...GIVEN].sort());
});
