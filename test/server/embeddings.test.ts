import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { convertToGguf } from '../../src/loader/gguf/convert.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { resolveServeConfig } from '../../src/server/config.ts';
import { EngineModelSource } from '../../src/server/engine-source.ts';
import { crossEncoderVariant, FolderVariants } from '../helpers/bert-variants.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { maxAbsDiff } from '../helpers/paged-session.ts';
import { request, startTestServer, type TestServer } from './harness.ts';

const fixtures = join(projectRoot, 'test', 'fixtures', 'models');
const BERT = join(fixtures, 'tiny-bert');
const QWEN = join(fixtures, 'tiny-qwen3-embed');
const LLAMA = join(fixtures, 'tiny-llama');

interface Golden {
  sentences: string[];
  input_ids: number[][];
  embeddings: number[][];
}
const golden = (dir: string): Golden => JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8'));
const TOL = 1e-4;

let server: TestServer;
let openai: OpenAI;
let ollama: Ollama;
const variants = new FolderVariants(BERT);
let reranker: ReturnType<typeof crossEncoderVariant>;
let matryoshka: string;
const ggufDir = mkdtempSync(join(tmpdir(), 'pagoda-embed-gguf-'));
const BERT_GGUF = join(ggufDir, 'tiny-bert.gguf');

before(async () => {
  convertToGguf(BERT, BERT_GGUF, 'f32');
  reranker = crossEncoderVariant(variants, BERT, false);
  const config = JSON.parse(readFileSync(join(BERT, 'config.json'), 'utf8'));
  const st = JSON.parse(readFileSync(join(BERT, 'config_sentence_transformers.json'), 'utf8'));
  matryoshka = variants.withFiles({
    'config.json': { ...config, is_matryoshka: true },
    'config_sentence_transformers.json': { ...st, prompts: { query: 'query: ' } },
  });
  const noPrompt = variants.withFiles({
    '1_Pooling/config.json': { pooling_mode: 'mean', include_prompt: false },
    'config_sentence_transformers.json': { ...st, prompts: { query: 'query: ' } },
  });
  const serveConfig = { ...resolveServeConfig({}, {}), port: 0 };
  const source = new EngineModelSource(serveConfig, { device: 'cpu', log: () => {} });
  const entry = (name: string, path: string) => ({ name, path, ref: path });
  server = await startTestServer(
    source,
    [
      entry('tiny-bert', BERT),
      entry('tiny-bert-gguf', BERT_GGUF),
      entry('tiny-qwen3-embed', QWEN),
      entry('tiny-llama', LLAMA),
      entry('reranker', reranker.dir),
      entry('bert-mrl', matryoshka),
      entry('bert-no-prompt', noPrompt),
    ],
    serveConfig,
  );
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  ollama = new Ollama({ host: server.url });
});
after(async () => {
  await server.close();
  variants.cleanup();
  rmSync(ggufDir, { recursive: true, force: true });
});

const post = (path: string, body: unknown) => request(`${server.url}${path}`, { method: 'POST', body });
const unit = (v: number[]) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};

describe('/v1/embeddings with the openai client', () => {
  for (const [name, dir] of [
    ['tiny-bert', BERT],
    ['tiny-qwen3-embed', QWEN],
  ] as const) {
    test(`${name}: strings (base64, the client's default, and float) match sentence-transformers`, async () => {
      const g = golden(dir);
      for (const encoding_format of [undefined, 'float'] as const) {
        const r = await openai.embeddings.create({ model: name, input: g.sentences, encoding_format });
        assert.equal(r.object, 'list');
        assert.equal(r.model, name);
        assert.equal(r.data.length, g.sentences.length);
        for (const [i, d] of r.data.entries()) {
          assert.equal(d.index, i);
          assert.ok(maxAbsDiff(d.embedding, g.embeddings[i]!) < TOL, `${name} sentence ${i} (${encoding_format})`);
        }
        const tokens = g.input_ids.reduce((n, ids) => n + ids.length, 0);
        assert.deepEqual(r.usage, { prompt_tokens: tokens, total_tokens: tokens });
      }
    });
  }

  test('a GGUF embedder (tiny-bert written as F32 GGUF) serves the golden embeddings', async () => {
    const g = golden(BERT);
    const r = await openai.embeddings.create({ model: 'tiny-bert-gguf', input: g.sentences, encoding_format: 'float' });
    for (const [i, d] of r.data.entries()) assert.ok(maxAbsDiff(d.embedding, g.embeddings[i]!) < TOL, `sentence ${i}`);
    const tokens = g.input_ids.reduce((n, ids) => n + ids.length, 0);
    assert.deepEqual(r.usage, { prompt_tokens: tokens, total_tokens: tokens });
  });

  test('token ids (one list, or a list of lists) embed as their text does', async () => {
    const g = golden(BERT);
    const one = await openai.embeddings.create({
      model: 'tiny-bert',
      input: g.input_ids[0]!,
      encoding_format: 'float',
    });
    assert.ok(maxAbsDiff(one.data[0]!.embedding, g.embeddings[0]!) < TOL);
    const many = await openai.embeddings.create({ model: 'tiny-bert', input: g.input_ids, encoding_format: 'float' });
    for (const [i, d] of many.data.entries()) assert.ok(maxAbsDiff(d.embedding, g.embeddings[i]!) < TOL);
  });

  test('dimensions: refused for a model without matryoshka support, cut and renormalized for one with it', async () => {
    await assert.rejects(
      openai.embeddings.create({ model: 'tiny-bert', input: 'a', dimensions: 16 }),
      (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && /does not support matryoshka/.test(e.message),
    );
    const g = golden(BERT);
    const r = await openai.embeddings.create({
      model: 'bert-mrl',
      input: g.sentences[0]!,
      dimensions: 16,
      encoding_format: 'float',
    });
    assert.ok(maxAbsDiff(r.data[0]!.embedding, unit(g.embeddings[0]!.slice(0, 16))) < TOL);
  });

  test("prompt_name prefixes the model's named prompt; an unknown name is a 400 listing the known ones", async () => {
    const r = await post('/v1/embeddings', {
      model: 'bert-mrl',
      input: 'a',
      prompt_name: 'query',
      encoding_format: 'float',
    });
    const plain = await post('/v1/embeddings', { model: 'bert-mrl', input: 'query: a', encoding_format: 'float' });
    assert.equal(r.status, 200);
    assert.deepEqual(
      (r.json.data as { embedding: number[] }[])[0]!.embedding,
      (plain.json.data as { embedding: number[] }[])[0]!.embedding,
    );
    const excluded = await post('/v1/embeddings', { model: 'bert-no-prompt', input: 'a', prompt_name: 'query' });
    assert.equal(excluded.status, 400);
    assert.match(String((excluded.json.error as { message: string }).message), /include_prompt: false/);
    const bad = await post('/v1/embeddings', { model: 'bert-mrl', input: 'a', prompt_name: 'passage' });
    assert.equal(bad.status, 400);
    assert.match(
      String((bad.json.error as { message: string }).message),
      /prompt_name: "passage" is not one of this model's prompts \(query\)/,
    );
  });

  test('bad inputs are one-line 400s naming the item', async () => {
    const cases: [unknown, RegExp, string][] = [
      ['', /input: must not be an empty string/, 'input'],
      [[], /input: must not be an empty list/, 'input'],
      [Array.from({ length: 10_000 }, () => 'x'), /at most 2048 inputs per request \(got 10000\)/, 'input'],
      [['a', 3], /input\[1\]: expected a string/, 'input[1]'],
      [[1, 'a'], /token ids must hold only integers/, 'input'],
      [
        [[1, 2], 'a'],
        /^input\[1\]: expected a list of integer token ids >= 0, since input\[0\] is a list of token ids$/,
        'input[1]',
      ],
      [['a', ['b']], /^input\[1\]: expected a string, since input\[0\] is a string$/, 'input[1]'],
      [[[1, 2, -5]], /^input\[0\]: expected a string or a list of integer token ids >= 0$/, 'input[0]'],
      [[[2, 5000]], /input\[0\]: token id 5000 is outside this model's vocabulary \(0\.\.1023\)/, 'input[0]'],
      [['ok', 'word '.repeat(600)], /input\[1\] is \d+ tokens, more than this model's maximum of 512/, 'input[1]'],
      [{ text: 'a' }, /input: expected a string, a list of strings, or token ids/, 'input'],
    ];
    for (const [input, pattern, param] of cases) {
      const r = await post('/v1/embeddings', { model: 'tiny-bert', input });
      const err = r.json.error as { message: string; param: string; type: string };
      assert.equal(r.status, 400, JSON.stringify(input).slice(0, 80));
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes('\n'));
      assert.equal(err.param, param);
      assert.equal(err.type, 'invalid_request_error');
    }
  });

  test('a text generator asked for embeddings, and an embedding model asked to chat, get one clear 400', async () => {
    await assert.rejects(
      openai.embeddings.create({ model: 'tiny-llama', input: 'a' }),
      (e: InstanceType<typeof OpenAI.APIError>) =>
        e.status === 400 &&
        /model "tiny-llama" generates text: it is not an embedding or reranking model/.test(e.message),
    );
    await assert.rejects(
      openai.chat.completions.create({ model: 'tiny-bert', messages: [{ role: 'user', content: 'hi' }] }),
      (e: InstanceType<typeof OpenAI.APIError>) =>
        e.status === 400 && /"tiny-bert" is an embedding model: it does not generate text/.test(e.message),
    );
    const gen = await post('/api/generate', { model: 'reranker', prompt: 'hi' });
    assert.equal(gen.status, 400);
    assert.match(
      String(gen.json.error),
      /"reranker" is a reranking model: it does not generate text \(use \/v1\/rerank\)/,
    );
  });
});

describe('/api/embed and /api/embeddings with the ollama client', () => {
  test('embed: one string and a list; Ollama normalizes; prompt_eval_count counts tokens', async () => {
    const g = golden(QWEN);
    const r = await ollama.embed({ model: 'tiny-qwen3-embed', input: g.sentences });
    assert.equal(r.model, 'tiny-qwen3-embed');
    for (const [i, e] of r.embeddings.entries()) assert.ok(maxAbsDiff(e, g.embeddings[i]!) < TOL, `sentence ${i}`);
    assert.equal(
      r.prompt_eval_count,
      g.input_ids.reduce((n, ids) => n + ids.length, 0),
    );
    const one = await ollama.embed({ model: 'tiny-qwen3-embed', input: g.sentences[3]! });
    assert.ok(maxAbsDiff(one.embeddings[0]!, g.embeddings[3]!) < TOL);
  });

  test('embed: dimensions cut and renormalize (any size, as Ollama does)', async () => {
    const g = golden(BERT);
    const r = await ollama.embed({ model: 'tiny-bert', input: g.sentences[1]!, dimensions: 10 });
    assert.ok(maxAbsDiff(r.embeddings[0]!, unit(g.embeddings[1]!.slice(0, 10))) < TOL);
  });

  test('embed: truncate (default) cuts the text between the special tokens; truncate false refuses', async () => {
    const long = 'word '.repeat(600);
    const cut = await ollama.embed({ model: 'tiny-bert', input: long });
    const tok = loadTokenizer(BERT);
    const ids = tok.encode(long);
    const kept = [...ids.slice(0, 511), ids.at(-1)!];
    const want = await openai.embeddings.create({ model: 'tiny-bert', input: [kept], encoding_format: 'float' });
    assert.equal(kept.length, 512);
    assert.ok(maxAbsDiff(cut.embeddings[0]!, want.data[0]!.embedding) < 1e-6);
    await assert.rejects(
      ollama.embed({ model: 'tiny-bert', input: long, truncate: false }),
      (e: Error & { status_code?: number }) =>
        e.status_code === 400 && /is \d+ tokens, more than this model's maximum of 512/.test(e.message),
    );
    const numCtx = await ollama.embed({ model: 'tiny-bert', input: long, options: { num_ctx: 8 } });
    const short = await openai.embeddings.create({
      model: 'tiny-bert',
      input: [[...ids.slice(0, 7), ids.at(-1)!]],
      encoding_format: 'float',
    });
    assert.ok(maxAbsDiff(numCtx.embeddings[0]!, short.data[0]!.embedding) < 1e-6);
  });

  test('embed: an empty or absent input loads the model and embeds nothing; bad items and many inputs', async () => {
    for (const input of ['', [], undefined]) {
      const r = await post('/api/embed', { model: 'tiny-bert', input });
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.embeddings, []);
    }
    const bad = await post('/api/embed', { model: 'tiny-bert', input: ['a', 7] });
    assert.equal(bad.status, 400);
    assert.match(String(bad.json.error), /input\[1\]: invalid input type/);
    // Ollama sets no limit on the list: 10,000 short inputs are batched and all answered.
    const many = await post('/api/embed', {
      model: 'tiny-bert',
      input: Array.from({ length: 10_000 }, (_, i) => `item ${i}`),
    });
    assert.equal(many.status, 200);
    assert.equal((many.json.embeddings as number[][]).length, 10_000);
  });

  test("embeddings (the older route): prompt in, the model's own embedding out; an empty prompt gives []", async () => {
    const g = golden(BERT);
    const r = await ollama.embeddings({ model: 'tiny-bert', prompt: g.sentences[2]! });
    assert.ok(maxAbsDiff(r.embedding, g.embeddings[2]!) < TOL);
    const empty = await post('/api/embeddings', { model: 'tiny-bert', prompt: '' });
    assert.deepEqual(empty.json, { embedding: [] });
  });

  test('/api/show lists the embedding capability; a chat model asked to embed is a 400', async () => {
    assert.deepEqual((await ollama.show({ model: 'tiny-bert' })).capabilities, ['embedding']);
    assert.deepEqual((await ollama.show({ model: 'tiny-llama' })).capabilities, ['completion']);
    await assert.rejects(
      ollama.embed({ model: 'tiny-llama', input: 'a' }),
      (e: Error & { status_code?: number }) => e.status_code === 400,
    );
  });
});

describe('/v1/rerank and /rerank', () => {
  const query = 'paged attention';
  const documents = [
    'The KV cache is stored in fixed-size blocks.',
    'a',
    'The quick brown fox jumps over the lazy dog.',
  ];

  test("a cross-encoder: sigmoid of the pair's logit, best first, top_n, documents returned", async () => {
    const { model } = loadPoolingModel(reranker.dir, new CpuBackend({ threads: 1 }));
    const tok = loadTokenizer(reranker.dir);
    const pairs = documents.map((d) => {
      const p = tok.encodePair!(query, d);
      return { tokenIds: p.ids, tokenTypeIds: p.typeIds };
    });
    const logits = model.backend.toHost(model.forward(model.backend.beginStep(buildPoolingBatch(pairs))));
    const want = [...logits].map((l) => 1 / (1 + Math.exp(-l)));
    for (const url of ['/v1/rerank', '/rerank']) {
      const r = await post(url, { model: 'reranker', query, documents, top_n: 2 });
      assert.equal(r.status, 200);
      const results = r.json.results as { index: number; relevance_score: number; document: { text: string } }[];
      const order = want.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0]);
      assert.deepEqual(
        results.map((x) => x.index),
        order.slice(0, 2).map(([, i]) => i),
      );
      for (const x of results) {
        assert.ok(Math.abs(x.relevance_score - want[x.index]!) < 1e-5);
        assert.equal(x.document.text, documents[x.index]);
      }
      const tokens = pairs.reduce((n, p) => n + p.tokenIds.length, 0);
      assert.deepEqual(r.json.usage, { prompt_tokens: tokens, total_tokens: tokens });
      assert.match(String(r.json.id), /^rerank-/);
    }
  });

  test("Jina's {text} documents, return_documents false, and an embedding model's cosine similarity", async () => {
    const r = await post('/v1/rerank', {
      model: 'tiny-bert',
      query: golden(BERT).sentences[3]!,
      documents: golden(BERT).sentences.map((text) => ({ text })),
      return_documents: false,
    });
    assert.equal(r.status, 200);
    const results = r.json.results as { index: number; relevance_score: number; document?: unknown }[];
    const e = golden(BERT).embeddings;
    const cos = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
    assert.equal(results[0]!.index, 3);
    for (const x of results) {
      assert.equal(x.document, undefined);
      assert.ok(Math.abs(x.relevance_score - cos(e[3]!, e[x.index]!)) < TOL);
    }
  });

  test('refusals: no documents, an empty one, a pair too long, a text generator; /rerank errors in OpenAI shape', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['/rerank', { model: 'reranker', query, documents: [] }, /documents: /],
      ['/v1/rerank', { model: 'reranker', query, documents: ['x', ''] }, /documents\[1\]: must not be empty/],
      [
        '/v1/rerank',
        { model: 'reranker', query, documents: [{ title: 'x' }] },
        /^documents\[0\]: expected a string or an object \{text\}$/,
      ],
      [
        '/v1/rerank',
        { model: 'reranker', query, documents: ['word '.repeat(600)] },
        /documents\[0\]: the query and document are \d+ tokens, more than this model's maximum of 512/,
      ],
      [
        '/v1/rerank',
        { model: 'tiny-llama', query, documents: ['x'] },
        /generates text: it is not an embedding or reranking model/,
      ],
    ];
    for (const [url, body, pattern] of cases) {
      const r = await post(url, body);
      assert.equal(r.status, 400);
      assert.match((r.json.error as { message: string }).message, pattern);
    }
  });
});
