import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadPoolingModel } from '../../src/models/pooling-load.ts';
import { buildPoolingBatch } from '../../src/runner/pooling-batch.ts';
import { resolveServeConfig } from '../../src/server/config.ts';
import { EngineModelSource } from '../../src/server/engine-source.ts';
import { crossEncoderVariant, FolderVariants } from '../helpers/bert-variants.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { request, startTestServer, type TestServer } from './harness.ts';

const fixtures = join(projectRoot, 'test', 'fixtures', 'models');
const BERT = join(fixtures, 'tiny-bert');
const QWEN3 = join(fixtures, 'tiny-qwen3');

let server: TestServer;
const variants = new FolderVariants(BERT);
let reranker: ReturnType<typeof crossEncoderVariant>;

before(async () => {
  reranker = crossEncoderVariant(variants, BERT, false);
  const serveConfig = { ...resolveServeConfig({}, {}), port: 0 };
  const source = new EngineModelSource(serveConfig, { device: 'cpu', log: () => {} });
  const entry = (name: string, path: string) => ({ name, path, ref: path });
  server = await startTestServer(
    source,
    [entry('tiny-bert', BERT), entry('tiny-qwen3', QWEN3), entry('reranker', reranker.dir)],
    serveConfig,
  );
});
after(async () => {
  await server.close();
  variants.cleanup();
});

const post = (path: string, body: unknown) => request(`${server.url}${path}`, { method: 'POST', body });
const message = (r: { json: Record<string, unknown> }) => (r.json.error as { message: string }).message;

describe('/score and /v1/score (vLLM)', () => {
  /** The reranker's sigmoid(logit) of each pair, computed apart from the server. */
  function pairScores(pairs: [string, string][]): number[] {
    const { model } = loadPoolingModel(reranker.dir, new CpuBackend({ threads: 1 }));
    const tok = loadTokenizer(reranker.dir);
    const inputs = pairs.map(([q, d]) => {
      const p = tok.encodePair!(q, d);
      return { tokenIds: p.ids, tokenTypeIds: p.typeIds };
    });
    const logits = model.backend.toHost(model.forward(model.backend.beginStep(buildPoolingBatch(inputs))));
    return [...logits].map((l) => 1 / (1 + Math.exp(-l)));
  }

  test('a cross-encoder: text_1 against each text_2 (1:N), and pair by pair (N:N), in order', async () => {
    const docs = ['The KV cache is stored in fixed-size blocks.', 'a', 'The quick brown fox.'];
    const oneToMany = pairScores(docs.map((d) => ['paged attention', d]));
    const manyToMany = pairScores([
      ['paged attention', docs[0]!],
      ['a fox', docs[2]!],
    ]);
    for (const url of ['/score', '/v1/score']) {
      const r = await post(url, { model: 'reranker', text_1: 'paged attention', text_2: docs });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.object, 'list');
      assert.match(String(r.json.id), /^score-/);
      const data = r.json.data as { index: number; object: string; score: number }[];
      assert.deepEqual(
        data.map((d) => [d.index, d.object]),
        docs.map((_, i) => [i, 'score']),
      );
      for (const d of data) assert.ok(Math.abs(d.score - oneToMany[d.index]!) < 1e-5, `${url} pair ${d.index}`);
      assert.ok(Math.max(...oneToMany) - Math.min(...oneToMany) > 1e-3, 'the pairs differ');
    }
    const r = await post('/score', {
      model: 'reranker',
      text_1: ['paged attention', 'a fox'],
      text_2: [docs[0], docs[2]],
    });
    assert.equal(r.status, 200);
    const data = r.json.data as { score: number }[];
    for (const [i, d] of data.entries()) assert.ok(Math.abs(d.score - manyToMany[i]!) < 1e-5, `pair ${i}`);
    const usage = r.json.usage as { prompt_tokens: number; total_tokens: number };
    assert.equal(usage.prompt_tokens, usage.total_tokens);
    assert.ok(usage.prompt_tokens > 0);
  });

  test("an embedding model: the cosine of each pair's embeddings (sentence-transformers' golden)", async () => {
    const g = JSON.parse(readFileSync(join(BERT, 'golden.json'), 'utf8')) as {
      sentences: string[];
      embeddings: number[][];
    };
    const cos = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
    const r = await post('/v1/score', { model: 'tiny-bert', text_1: g.sentences[1], text_2: g.sentences });
    assert.equal(r.status, 200);
    for (const d of r.json.data as { index: number; score: number }[]) {
      assert.ok(Math.abs(d.score - cos(g.embeddings[1]!, g.embeddings[d.index]!)) < 1e-4, `pair ${d.index}`);
    }
  });

  test('an embedding model pair by pair (N:N): each text_1 against its own text_2', async () => {
    const g = JSON.parse(readFileSync(join(BERT, 'golden.json'), 'utf8')) as {
      sentences: string[];
      embeddings: number[][];
    };
    const cos = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
    const r = await post('/score', {
      model: 'tiny-bert',
      text_1: g.sentences.slice(0, 3),
      text_2: g.sentences.slice(3, 6),
    });
    assert.equal(r.status, 200);
    for (const d of r.json.data as { index: number; score: number }[]) {
      assert.ok(Math.abs(d.score - cos(g.embeddings[d.index]!, g.embeddings[d.index + 3]!)) < 1e-4, `pair ${d.index}`);
    }
  });

  test('refusals in OpenAI shape: lists of different lengths, an empty text, a text generator', async () => {
    const cases: [unknown, RegExp][] = [
      [
        { model: 'reranker', text_1: ['a', 'b'], text_2: ['x', 'y', 'z'] },
        /^text_1 has 2 texts and text_2 3: give one text_1, or as many as text_2$/,
      ],
      [{ model: 'reranker', text_1: 'a', text_2: ['x', ''] }, /^text_2\[1\]: must not be empty$/],
      // Other APIs' names for the two sides are named, with what /score takes instead.
      [
        { model: 'reranker', queries: 'a', documents: ['x'] },
        /^unknown fields "queries", "documents": pagoda does not support them \(expected text_1 and text_2, each a string or a list of strings\)$/,
      ],
      [{ model: 'reranker', data_1: 'a', text_2: 'x' }, /^unknown field "data_1": .*\(expected text_1 and text_2/],
      [{ model: 'reranker', text_1: 'a' }, /^text_2: expected a string or a list of strings$/],
      [{ model: 'tiny-qwen3', text_1: 'a', text_2: 'b' }, /generates text: it is not an embedding or reranking model/],
      [
        { model: 'reranker', text_1: 'a', text_2: 'b', activation: false },
        /^activation: false \(raw logits\) is not supported/,
      ],
      [
        { model: 'reranker', text_1: 'a', text_2: 'b', truncate_prompt_tokens: 600 },
        /^truncate_prompt_tokens 600: more than the model's context length \(512\)$/,
      ],
    ];
    for (const [body, pattern] of cases) {
      const r = await post('/score', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(message(r), pattern);
    }
  });
});

describe('/tokenize and /detokenize (vLLM)', () => {
  const tok = loadTokenizer(QWEN3);

  test("a prompt's ids, with or without the special tokens, and their vocabulary entries; back to text", async () => {
    const text = 'Once upon a time, paged attention';
    const r = await post('/tokenize', { model: 'tiny-qwen3', prompt: text, return_token_strs: true });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const ids = tok.encode(text);
    assert.deepEqual(r.json.tokens, ids);
    assert.equal(r.json.count, ids.length);
    assert.equal(r.json.max_model_len, 512);
    assert.deepEqual(
      r.json.token_strs,
      ids.map((id) => tok.tokenText!(id)),
    );
    assert.ok(
      (r.json.token_strs as string[]).some((s) => s.startsWith('Ġ')),
      'entries as stored, not decoded',
    );
    const bare = await post('/tokenize', { model: 'tiny-qwen3', prompt: text, add_special_tokens: false });
    assert.deepEqual(bare.json.tokens, tok.encode(text, { addSpecialTokens: false }));
    assert.equal(bare.json.token_strs, null);
    const back = await post('/detokenize', { model: 'tiny-qwen3', tokens: bare.json.tokens });
    assert.equal(back.status, 200);
    assert.deepEqual(back.json, { prompt: text });
  });

  test('messages through the chat template: the ids a chat completion is given, the assistant turn opened or not', async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'What is a KV cache?' },
    ];
    const r = await post('/tokenize', { model: 'tiny-qwen3', messages });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const chat = await post('/v1/chat/completions', { model: 'tiny-qwen3', messages, max_tokens: 1 });
    assert.equal(r.json.count, (chat.json.usage as { prompt_tokens: number }).prompt_tokens);
    // The ids themselves: the chat template rendered (transformers' rendering, in the fixture's golden) and tokenized.
    const golden = JSON.parse(readFileSync(join(QWEN3, 'golden.json'), 'utf8')).chat as {
      messages: unknown[];
      input_ids: number[];
    };
    const again = await post('/tokenize', { model: 'tiny-qwen3', messages: golden.messages });
    assert.deepEqual(again.json.tokens, golden.input_ids);
    const text = await post('/detokenize', { model: 'tiny-qwen3', tokens: r.json.tokens });
    assert.match(String(text.json.prompt), /Be brief\.[\s\S]*What is a KV cache\?[\s\S]*<\|im_start\|>assistant\n$/);
    const closed = await post('/tokenize', { model: 'tiny-qwen3', messages, add_generation_prompt: false });
    const opened = r.json.tokens as number[];
    const without = closed.json.tokens as number[];
    assert.ok(without.length < opened.length);
    assert.deepEqual(opened.slice(0, without.length), without);
  });

  test('continue_final_message leaves the last assistant message open; tools are checked as chat checks them', async () => {
    const messages = [
      { role: 'user', content: 'Say hello.' },
      { role: 'assistant', content: 'Hello, wor' },
    ];
    const r = await post('/tokenize', { model: 'tiny-qwen3', messages, continue_final_message: true });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const text = await post('/detokenize', { model: 'tiny-qwen3', tokens: r.json.tokens });
    assert.match(String(text.json.prompt), /<\|im_start\|>assistant\n(<think>\n\n<\/think>\n\n)?Hello, wor$/);
    const both = await post('/tokenize', {
      model: 'tiny-qwen3',
      messages,
      continue_final_message: true,
      add_generation_prompt: true,
    });
    assert.equal(both.status, 400);
    // Tools as chat completions takes them: a template that cannot write them refuses them (a 400), as chat does.
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
    const withTools = await post('/tokenize', { model: 'tiny-qwen3', messages: messages.slice(0, 1), tools });
    const chat = await post('/v1/chat/completions', { model: 'tiny-qwen3', messages: messages.slice(0, 1), tools });
    assert.deepEqual([withTools.status, chat.status], [400, 400]);
    assert.equal(message(withTools), 'the chat template of model "tiny-qwen3" cannot render tools');
  });

  test('a text longer than the context is counted, not refused (it is no prompt here)', async () => {
    const text = 'paged attention keeps the cache in blocks. '.repeat(400);
    const r = await post('/tokenize', { model: 'tiny-qwen3', prompt: text, add_special_tokens: false });
    assert.equal(r.status, 200, JSON.stringify(r.json).slice(0, 200));
    assert.deepEqual(r.json.tokens, tok.encode(text, { addSpecialTokens: false }));
    assert.ok((r.json.count as number) > 512, `count ${r.json.count} past the context of 512`);
    const chat = await post('/tokenize', { model: 'tiny-qwen3', messages: [{ role: 'user', content: text }] });
    assert.equal(chat.status, 200);
    assert.ok((chat.json.count as number) > (r.json.count as number), 'the conversation adds its template');
    const generate = await post('/v1/completions', { model: 'tiny-qwen3', prompt: text, max_tokens: 1 });
    assert.equal(generate.status, 400, 'as a prompt it is refused');
    // Anthropic's count_tokens counts it as /tokenize does.
    const messages = [{ role: 'user', content: text }];
    const counted = await post('/v1/messages/count_tokens', { model: 'tiny-qwen3', messages });
    assert.equal(counted.status, 200, JSON.stringify(counted.json).slice(0, 200));
    assert.equal(counted.json.input_tokens, chat.json.count);
  });

  test('any model: an embedding model tokenizes with its [CLS] and [SEP]', async () => {
    const r = await post('/tokenize', { model: 'tiny-bert', prompt: 'hello world' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.tokens, loadTokenizer(BERT).encode('hello world'));
  });

  test('refusals in OpenAI shape: neither or both of prompt and messages, an id outside the vocabulary', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['/tokenize', { model: 'tiny-qwen3' }, /give either prompt or messages/],
      [
        '/tokenize',
        { model: 'tiny-qwen3', prompt: 'a', messages: [{ role: 'user', content: 'b' }] },
        /give either prompt or messages/,
      ],
      [
        '/detokenize',
        { model: 'tiny-qwen3', tokens: [1, 99999] },
        /^tokens\[1\]: id 99999 is outside the vocabulary \(0\.\.\d+\)$/,
      ],
    ];
    for (const [url, body, pattern] of cases) {
      const r = await post(url, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(message(r), pattern);
    }
  });
});
