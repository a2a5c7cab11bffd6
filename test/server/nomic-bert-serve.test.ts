import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveServeConfig } from '../../src/server/config.ts';
import { EngineModelSource } from '../../src/server/engine-source.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { writeTinyNomicBertFolder } from '../helpers/nomic-bert-folder.ts';
import { writeTinyNomicBert } from '../helpers/nomic-bert-gguf.ts';
import { request, startTestServer, type TestServer } from './harness.ts';

const bert = modelFixture('tiny-bert');
const tmp = mkdtempSync(join(tmpdir(), 'pagoda-nomic-serve-'));
let server: TestServer | undefined;

before(async () => {
  if (bert.skip) return;
  const folder = join(tmp, 'tiny-nomic');
  const gguf = join(tmp, 'tiny-nomic.gguf');
  writeTinyNomicBertFolder(folder, bert.path);
  writeTinyNomicBert(gguf, bert.path);
  const serveConfig = { ...resolveServeConfig({}, {}), port: 0 };
  const source = new EngineModelSource(serveConfig, { device: 'cpu', log: () => {} });
  const entry = (name: string, path: string) => ({ name, path, ref: path });
  server = await startTestServer(source, [entry('nomic-hf', folder), entry('nomic-gguf', gguf)], serveConfig);
});
after(async () => {
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const embed = async (body: Record<string, unknown>) => {
  const r = await request(`${server!.url}/v1/embeddings`, {
    method: 'POST',
    body: { encoding_format: 'float', ...body },
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json as { data: { embedding: number[] }[]; usage: unknown };
};

test('serve: a nomic-bert HF folder answers /v1/embeddings with its named prefix as the GGUF file does with the text', {
  skip: bert.skip,
}, async () => {
  const texts = ['the quick brown fox', 'hello world'];
  const hf = await embed({ model: 'nomic-hf', input: texts, prompt_name: 'search_query' });
  const gguf = await embed({ model: 'nomic-gguf', input: texts.map((t) => `search_query: ${t}`) });
  assert.equal(hf.data.length, texts.length);
  assert.equal(hf.data[0]!.embedding.length, 64);
  assert.deepEqual(hf.data, gguf.data);
  assert.deepEqual(hf.usage, gguf.usage);
  const bare = await embed({ model: 'nomic-hf', input: texts });
  assert.notDeepEqual(bare.data, hf.data);
});
