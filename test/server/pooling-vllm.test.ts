import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveServeConfig } from '../../src/server/config.ts';
import { EngineModelSource } from '../../src/server/engine-source.ts';
import { FolderVariants } from '../helpers/bert-variants.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { request, startTestServer, type TestServer } from './harness.ts';

const BERT = join(projectRoot, 'test', 'fixtures', 'models', 'tiny-bert');

/** vLLM's behaviours on the embedding and rerank routes, with tiny-bert capped at 32 tokens by max_seq_length. */
let server: TestServer;
const variants = new FolderVariants(BERT);
let short: string;

before(async () => {
  const st = JSON.parse(readFileSync(join(BERT, 'sentence_bert_config.json'), 'utf8'));
  short = variants.withFiles({ 'sentence_bert_config.json': { ...st, max_seq_length: 32 } });
  const serveConfig = { ...resolveServeConfig({}, {}), port: 0 };
  const source = new EngineModelSource(serveConfig, { device: 'cpu', log: () => {} });
  server = await startTestServer(source, [{ name: 'bert-short', path: short, ref: short }], serveConfig);
});
after(async () => {
  await server.close();
  variants.cleanup();
});

const post = (path: string, body: unknown) => request(`${server.url}${path}`, { method: 'POST', body });

test("/v1/models cards carry vLLM's root, parent and permission", async () => {
  const card = (await request(`${server.url}/v1/models`)).json.data as Record<string, unknown>[];
  assert.equal(card.length, 1);
  const { root, parent, permission } = card[0]!;
  assert.equal(root, short);
  assert.equal(parent, null);
  const [p] = permission as Record<string, unknown>[];
  assert.match(String(p!.id), /^modelperm-/);
  assert.deepEqual(
    [p!.object, p!.allow_sampling, p!.allow_logprobs, p!.allow_view, p!.allow_fine_tuning, p!.organization, p!.group],
    ['model_permission', true, true, true, false, '*', null],
  );
});

describe('the effective length', () => {
  test("max_seq_length caps the model's length in /v1/models, /api/show, /api/ps and /tokenize alike", async () => {
    // Before the model loads, then after.
    for (const when of ['unloaded', 'loaded']) {
      const card = await request(`${server.url}/v1/models/bert-short`);
      assert.equal(card.json.max_model_len, 32, when);
      const show = await post('/api/show', { model: 'bert-short' });
      const info = show.json.model_info as Record<string, unknown>;
      const key = Object.keys(info).find((k) => k.endsWith('.context_length'))!;
      assert.equal(info[key], 32, when);
      const tokenized = await post('/tokenize', { model: 'bert-short', prompt: 'a' });
      assert.equal(tokenized.json.max_model_len, 32, when);
    }
    const ps = await request(`${server.url}/api/ps`);
    assert.equal((ps.json.models as { context_length: number }[])[0]!.context_length, 32);
    const tooLong = await post('/v1/embeddings', { model: 'bert-short', input: 'word '.repeat(40) });
    assert.equal(tooLong.status, 400);
    assert.match((tooLong.json.error as { message: string }).message, /more than this model's maximum of 32/);
  });
});
