import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { resolveServeConfig } from '../../src/server/config.ts';
import { EngineModelSource } from '../../src/server/engine-source.ts';
import { crossEncoderVariant, FolderVariants } from '../helpers/bert-variants.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { capturedLog, eventually, request, startTestServer, type TestServer } from './harness.ts';

const BERT = join(projectRoot, 'test', 'fixtures', 'models', 'tiny-bert');
const LLAMA = join(projectRoot, 'test', 'fixtures', 'models', 'tiny-llama');

/** vLLM's behaviours on the embedding and rerank routes, with tiny-bert capped at 32 tokens by max_seq_length. */
let server: TestServer;
const variants = new FolderVariants(BERT);
let short: string;
const tok = loadTokenizer(BERT);

before(async () => {
  const st = JSON.parse(readFileSync(join(BERT, 'sentence_bert_config.json'), 'utf8'));
  short = variants.withFiles({ 'sentence_bert_config.json': { ...st, max_seq_length: 32 } });
  const serveConfig = { ...resolveServeConfig({}, {}), port: 0 };
  const source = new EngineModelSource(serveConfig, { device: 'cpu', log: () => {} });
  const reranker = crossEncoderVariant(variants, BERT, false).dir;
  const entry = (name: string, path: string) => ({ name, path, ref: path });
  server = await startTestServer(source, [entry('bert-short', short), entry('reranker', reranker)], serveConfig);
});
after(async () => {
  await server.close();
  variants.cleanup();
});

const post = (path: string, body: unknown) => request(`${server.url}${path}`, { method: 'POST', body });

test("/v1/models cards carry vLLM's root, parent and permission", async () => {
  const { root, parent, permission } = (await request(`${server.url}/v1/models/bert-short`)).json;
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

const message = (r: { json: Record<string, unknown> }) => (r.json.error as { message: string }).message;
const embedding = (r: { json: Record<string, unknown> }, i = 0) =>
  (r.json.data as { embedding: number[] }[])[i]!.embedding;
const usage = (r: { json: Record<string, unknown> }) => (r.json.usage as { prompt_tokens: number }).prompt_tokens;
const long = 'the '.repeat(60);

describe("vLLM's truncate_prompt_tokens and add_special_tokens", () => {
  test('/v1/embeddings: a text keeps its first k tokens between its special tokens; token ids their last k', async () => {
    const ids = tok.encode(long);
    const asIds = async (input: number[]) => {
      const r = await post('/v1/embeddings', { model: 'bert-short', input: [input], encoding_format: 'float' });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return embedding(r);
    };
    for (const [k, keep] of [
      [10, 10],
      [-1, 32],
    ] as const) {
      for (const [input, kept] of [
        [long, [...ids.slice(0, keep - 1), ids.at(-1)!]],
        [[ids.slice(0, 50)], ids.slice(50 - keep, 50)],
      ] as const) {
        const body = { model: 'bert-short', input, truncate_prompt_tokens: k, encoding_format: 'float' };
        const r = await post('/v1/embeddings', body);
        assert.equal(r.status, 200, JSON.stringify(r.json));
        assert.equal(usage(r), keep);
        assert.deepEqual(embedding(r), await asIds([...kept]));
      }
    }
    const tooMany = await post('/v1/embeddings', { model: 'bert-short', input: 'a', truncate_prompt_tokens: 33 });
    assert.equal(tooMany.status, 400);
    assert.equal((tooMany.json.error as { param: string }).param, 'truncate_prompt_tokens');
    assert.match(message(tooMany), /^truncate_prompt_tokens 33: more than the model's context length \(32\)$/);
  });

  test('/v1/embeddings: add_special_tokens false embeds the text without them', async () => {
    const text = 'paged attention';
    const r = await post('/v1/embeddings', {
      model: 'bert-short',
      input: text,
      add_special_tokens: false,
      encoding_format: 'float',
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const plain = tok.encode(text, { addSpecialTokens: false });
    assert.equal(usage(r), plain.length);
    const want = await post('/v1/embeddings', { model: 'bert-short', input: [plain], encoding_format: 'float' });
    assert.deepEqual(embedding(r), embedding(want));
  });

  test('/v1/embeddings: a chat-style request (messages) is one clear 400', async () => {
    const r = await post('/v1/embeddings', { model: 'bert-short', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 400);
    assert.equal((r.json.error as { param: string }).param, 'messages');
    assert.match(
      message(r),
      /^messages: a chat-style embedding request is not supported by pagoda: send the texts as input$/,
    );
  });

  test("a cross-encoder's pair is cut to k by its document's end, the query kept whole", async () => {
    const query = 'paged attention';
    // The pair of exactly 20 tokens the cut must give: the document's first n words.
    const n = [...Array(60).keys()].find((m) => tok.encodePair!(query, 'the '.repeat(m)).ids.length === 20);
    assert.ok(n, 'a document of 20 tokens with the query');
    const scores = async (url: string, body: Record<string, unknown>) => {
      const r = await post(url, { model: 'reranker', ...body });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return r;
    };
    const cut = await scores('/v1/rerank', { query, documents: [long], truncate_prompt_tokens: 20 });
    const whole = await scores('/v1/rerank', { query, documents: ['the '.repeat(n)] });
    assert.equal(usage(cut), 20);
    const score = (r: { json: Record<string, unknown> }) =>
      (r.json.results as { relevance_score: number }[])[0]!.relevance_score;
    assert.equal(score(cut), score(whole));
    const scored = await scores('/score', { text_1: query, text_2: [long], truncate_prompt_tokens: 20 });
    assert.equal((scored.json.data as { score: number }[])[0]!.score, score(whole));
    const noRoom = await post('/v1/rerank', {
      model: 'reranker',
      query: long,
      documents: ['a'],
      truncate_prompt_tokens: 10,
    });
    assert.equal(noRoom.status, 400);
    assert.match(
      message(noRoom),
      /^documents\[0\]: truncate_prompt_tokens 10 leaves no room for the document after the query$/,
    );
  });

  test('an embedding model on /score and /rerank cuts each text; without truncate_prompt_tokens a long one is refused', async () => {
    const refused = await post('/v1/score', { model: 'bert-short', text_1: 'a', text_2: long });
    assert.equal(refused.status, 400);
    assert.match(message(refused), /^text_2\[0\] is \d+ tokens, more than this model's maximum of 32$/);
    const cut = await post('/v1/score', { model: 'bert-short', text_1: 'a', text_2: long, truncate_prompt_tokens: -1 });
    assert.equal(cut.status, 200, JSON.stringify(cut.json));
    assert.equal(usage(cut), tok.encode('a').length + 32);
    const reranked = await post('/rerank', {
      model: 'bert-short',
      query: long,
      documents: ['a'],
      truncate_prompt_tokens: 8,
    });
    assert.equal(reranked.status, 200, JSON.stringify(reranked.json));
    assert.equal(usage(reranked), 8 + tok.encode('a').length);
    const tooMany = await post('/rerank', {
      model: 'bert-short',
      query: 'a',
      documents: ['a'],
      truncate_prompt_tokens: 40,
    });
    assert.equal(tooMany.status, 400);
    assert.equal((tooMany.json.error as { param: string }).param, 'truncate_prompt_tokens');
  });
});

test('/v2/rerank (Cohere v2 clients) takes the same request and answers as /v1/rerank', async () => {
  const body = { model: 'reranker', query: 'paged attention', documents: ['blocks of the cache', 'a fox'], top_n: 1 };
  const [v1, v2] = await Promise.all([post('/v1/rerank', body), post('/v2/rerank', body)]);
  assert.equal(v2.status, 200, JSON.stringify(v2.json));
  assert.deepEqual(v2.json.results, v1.json.results);
  const bad = await post('/v2/rerank', { ...body, documents: [] });
  assert.equal(bad.status, 400);
  assert.equal(typeof (bad.json.error as { type: string }).type, 'string', "OpenAI's error shape");
});

describe('`model` may be left out of /rerank, /score, /tokenize and /detokenize, as vLLM serves one model', () => {
  test('with one model of the kind the route needs, that model answers', async () => {
    const dir = crossEncoderVariant(variants, BERT, false).dir;
    const serveConfig = { ...resolveServeConfig({}, {}), port: 0 };
    const source = new EngineModelSource(serveConfig, { device: 'cpu', log: () => {} });
    const entries = [
      { name: 'only', path: dir, ref: dir },
      { name: 'generator', path: LLAMA, ref: LLAMA },
    ];
    const single = await startTestServer(source, entries, serveConfig);
    const at = (path: string, body: unknown) => request(`${single.url}${path}`, { method: 'POST', body });
    try {
      const body = { query: 'paged attention', documents: ['blocks', 'a fox'] };
      for (const path of ['/rerank', '/v1/rerank', '/v2/rerank']) {
        const r = await at(path, body);
        assert.equal(r.status, 200, `${path} ${JSON.stringify(r.json)}`);
        assert.equal(r.json.model, 'only');
        assert.deepEqual(r.json.results, (await at(path, { ...body, model: 'only' })).json.results);
      }
      const scored = await at('/score', { text_1: 'a', text_2: 'b' });
      assert.equal(scored.json.model, 'only');
      // Any model has a tokenizer: two here.
      const tokenized = await at('/tokenize', { prompt: 'a' });
      assert.equal(tokenized.status, 400);
      assert.equal((tokenized.json.error as { param: string }).param, 'model');
      assert.match(
        message(tokenized),
        /^model is required: several models could answer \(only, generator\); name one$/,
      );
    } finally {
      await single.close();
    }
  });

  test('with several, a 400 names the model field and the candidates', async () => {
    for (const path of ['/rerank', '/score', '/tokenize', '/detokenize']) {
      const body = { query: 'q', documents: ['d'], text_1: 'a', text_2: 'b', prompt: 'a', tokens: [1] };
      const keys = {
        '/rerank': ['query', 'documents'],
        '/score': ['text_1', 'text_2'],
        '/tokenize': ['prompt'],
        '/detokenize': ['tokens'],
      }[path]!;
      const r = await post(path, Object.fromEntries(keys.map((k) => [k, body[k as keyof typeof body]])));
      assert.equal(r.status, 400, path);
      assert.equal((r.json.error as { param: string }).param, 'model');
      assert.match(
        message(r),
        /^model is required: several models could answer \(bert-short, reranker\); name one$/,
        path,
      );
    }
  });
});

test('a client that leaves a long /v1/embeddings batch cancels its work; logged at info as an abort, never an error', async () => {
  const { log, lines } = capturedLog('info');
  const serveConfig = { ...resolveServeConfig({}, {}), port: 0 };
  const source = new EngineModelSource(serveConfig, { device: 'cpu', log: () => {} });
  const served = await startTestServer(source, [{ name: 'bert', path: BERT, ref: BERT }], serveConfig, log);
  const engine = () => served.ctx.registry.resident()[0]!.model.engine;
  try {
    await request(`${served.url}/v1/embeddings`, { method: 'POST', body: { model: 'bert', input: 'load it' } });
    const input = Array.from({ length: 2048 }, (_, i) => `${i} ${'the '.repeat(100)}`);
    const req = http.request(`${served.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    req.on('error', () => {});
    req.end(JSON.stringify({ model: 'bert', input }));
    await eventually(() => engine().stats().waiting > 0, 10_000, 'the batch to queue');
    req.destroy();
    await eventually(() => engine().stats().waiting === 0 && served.ctx.gate.size === 0, 5000, 'the batch dropped');
    const steps = engine().stats().steps;
    assert.ok(steps < 2048 / 2, `${steps} steps: the batch was not run to its end`);
    await eventually(() => lines.some((l) => l.url === '/v1/embeddings' && l.aborted), 5000, 'the log line');
    const line = lines.find((l) => l.url === '/v1/embeddings' && l.aborted)!;
    assert.equal(line.level, 30);
    assert.equal(line.finish_reason, 'abort');
    assert.deepEqual(
      lines.filter((l) => (l.level as number) >= 50),
      [],
    );
  } finally {
    await served.close();
  }
});
