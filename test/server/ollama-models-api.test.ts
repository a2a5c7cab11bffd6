import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import { convertToGguf } from '../../src/loader/gguf/convert.ts';
import { GgufFile } from '../../src/loader/gguf/read.ts';
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
  const f32 = join(root, 'qwen-f32.gguf');
  convertToGguf(QWEN, f32, 'f32');
  addToOllamaStore(join(root, 'ollama'), 'registry.ollama.ai/library/qwen-f32/latest', [
    { kind: 'model', content: readFileSync(f32) },
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

test('create with quantize stores the base quantized as a new blob; it loads and answers', async () => {
  const events = [];
  for await (const e of await ollama.create({ model: 'qwen-q8', from: 'qwen-f32', quantize: 'q8_0', stream: true })) {
    events.push(e.status);
  }
  assert.deepEqual(events, ['quantizing to Q8_0', 'writing manifest', 'success']);
  const created = resolveModel('qwen-q8');
  assert.equal(created.manifest?.source.kind, 'blob');
  const file = GgufFile.open(created.path);
  try {
    assert.equal(file.value('general.file_type'), 7);
    assert.equal(file.tensors.get('blk.0.attn_q.weight')?.type.name, 'Q8_0');
    assert.equal(file.tensors.get('blk.0.attn_norm.weight')?.type.name, 'F32');
  } finally {
    file.close();
  }
  assert.equal((await ollama.show({ model: 'qwen-q8' })).details.quantization_level, 'Q8_0');
  const answer = await ollama.generate({ model: 'qwen-q8', prompt: 'Hello', options: { num_predict: 4 } });
  assert.equal(answer.done, true);
  assert.ok(answer.eval_count > 0);
  await assert.rejects(
    ollama.create({ model: 'small', from: 'qwen-f32', quantize: 'q9_9' }),
    (err: { status_code: number; error: string }) => {
      assert.equal(err.status_code, 400);
      assert.match(err.error, /^\/api\/create: quantize q9_9: unknown quantization \(expected one of q8_0, /);
      return true;
    },
  );
});

test('create without quantize builds on the base as it is', async () => {
  // Without quantize, a model over Ollama's blob is created (no weights copied).
  assert.equal((await ollama.create({ model: 'kinder', from: 'phi3:mini', system: 'Be kinder.' })).status, 'success');
  const created = resolveModel('kinder');
  assert.equal(created.path, resolveModel('phi3:mini').path);
  assert.equal(created.manifest?.system, 'Be kinder.');
});
