import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { FakeSource } from './fake-engine.ts';
import { capturedLog, eventually, post, startTestServer, type TestServer } from './harness.ts';

const { log, lines: logLines } = capturedLog();
let server: TestServer;
let openai: OpenAI;
let ollama: Ollama;
const source = new FakeSource();
before(async () => {
  server = await startTestServer(source, [{ name: 'm', path: '/m', ref: 'm' }], {}, log);
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  ollama = new Ollama({ host: server.url });
});
after(() => server.close());

const ignoredLogged = () =>
  logLines.filter((l) => /accepted and ignored/.test(String(l.msg))).map((l) => l.field as string);

const messages = [{ role: 'user' as const, content: 'hi' }];

test('OpenAI bookkeeping fields are accepted, change nothing, and are logged once each at debug level', async () => {
  const plain = await openai.chat.completions.create({ model: 'm', messages, max_tokens: 6, seed: 3 });
  const extras = {
    store: true,
    metadata: { team: 'a' },
    service_tier: 'auto' as const,
    prompt_cache_key: 'k1',
    safety_identifier: 'h4sh',
    verbosity: 'low' as const,
    user: 'u-1',
  };
  for (let i = 0; i < 2; i++) {
    const r = await openai.chat.completions.create({ model: 'm', messages, max_tokens: 6, seed: 3, ...extras });
    assert.equal(r.choices[0].message.content, plain.choices[0].message.content);
  }
  const c = await openai.completions.create({ model: 'm', prompt: 'hi', max_tokens: 3, ...extras });
  assert.equal(c.choices.length, 1);
  assert.deepEqual(ignoredLogged().sort(), Object.keys(extras).sort());
});

test('Ollama runner options and tfs_z are accepted and ignored; sampler options out of range are refused', async () => {
  const options = { num_predict: 5, seed: 1 };
  const plain = await ollama.generate({ model: 'm', prompt: 'hi', options });
  const runner = {
    num_thread: 8,
    num_gpu: 99,
    main_gpu: 0,
    num_batch: 512,
    num_keep: 4,
    use_mmap: true,
    use_mlock: false,
    low_vram: false,
    f16_kv: true,
    vocab_only: false,
    numa: false,
    tfs_z: 1,
  };
  const r = await ollama.generate({ model: 'm', prompt: 'hi', options: { ...options, ...runner } });
  assert.equal(r.response, plain.response);
  const chat = await ollama.chat({ model: 'm', messages, options: { ...options, ...runner } });
  assert.equal(chat.done, true);
  for (const key of Object.keys(runner)) assert.ok(ignoredLogged().includes(`options.${key}`), key);
  assert.equal(ignoredLogged().filter((f) => f === 'options.num_thread').length, 1);
  for (const refused of [{ mirostat: 3 }, { typical_p: 0 }, { repeat_last_n: -2 }]) {
    const bad = await post(`${server.url}/api/generate`, { model: 'm', prompt: 'x', options: refused });
    assert.equal(bad.status, 400, JSON.stringify(refused));
    assert.match(String(bad.json.error), new RegExp(Object.keys(refused)[0]));
  }
  // reasoning_effort reaches the template (tools-api.test.ts); a level OpenAI does not have is refused.
  const effort = await post(`${server.url}/v1/chat/completions`, { model: 'm', messages, reasoning_effort: 'max' });
  assert.equal(effort.status, 400);
  assert.match(JSON.stringify(effort.json.error), /reasoning_effort/);
});

test("Ollama's sampler options reach the engine; repeat_last_n defaults to Ollama's 64", async () => {
  const params = () => source.engines.get('m')!.lastRequest!.params!;
  const sampler = { repeat_last_n: 16, typical_p: 0.9, mirostat: 2, mirostat_tau: 4, mirostat_eta: 0.2 };
  await ollama.generate({ model: 'm', prompt: 'hi', options: { num_predict: 2, repeat_penalty: 1.1, ...sampler } });
  assert.deepEqual(
    {
      repeatLastN: params().repeatLastN,
      typicalP: params().typicalP,
      mirostat: params().mirostat,
      mirostatTau: params().mirostatTau,
      mirostatEta: params().mirostatEta,
    },
    { repeatLastN: 16, typicalP: 0.9, mirostat: 2, mirostatTau: 4, mirostatEta: 0.2 },
  );
  await ollama.chat({ model: 'm', messages, options: { num_predict: 2, repeat_penalty: 1.1 } });
  assert.equal(params().repeatLastN, 64);
  // The OpenAI routes keep vLLM's rule: the penalties see the whole sequence.
  await openai.completions.create({ model: 'm', prompt: 'hi', max_tokens: 2, frequency_penalty: 0.5 });
  assert.equal(params().repeatLastN, undefined);
});

test("keep_alive on the OpenAI routes is honoured as on Ollama's: 0 unloads the model after the request", async () => {
  await openai.completions.create({ model: 'm', prompt: 'hi', max_tokens: 2 });
  assert.equal(server.ctx.registry.resident().length, 1);
  const params = { model: 'm', messages, max_tokens: 2, keep_alive: 0 };
  await openai.chat.completions.create(params as OpenAI.ChatCompletionCreateParamsNonStreaming);
  await eventually(() => server.ctx.registry.resident().length === 0, 2000, 'unload');
  const bad = await post(`${server.url}/v1/completions`, { model: 'm', prompt: 'x', keep_alive: 'soon' });
  assert.equal(bad.status, 400);
  assert.equal((bad.json.error as { param: string }).param, 'keep_alive');
});

test('`user` is accepted on every OpenAI route only as a string or null, as OpenAI checks its type', async () => {
  const bodies: [string, Record<string, unknown>][] = [
    ['/v1/chat/completions', { model: 'm', messages, max_tokens: 2 }],
    ['/v1/completions', { model: 'm', prompt: 'hi', max_tokens: 2 }],
    ['/v1/responses', { model: 'm', input: 'hi', max_output_tokens: 2 }],
    ['/v1/embeddings', { model: 'm', input: 'hi' }],
    ['/v1/rerank', { model: 'm', query: 'q', documents: ['d'] }],
  ];
  for (const [path, body] of bodies) {
    const bad = await post(`${server.url}${path}`, { ...body, user: 5 });
    assert.equal(bad.status, 400, path);
    const error = bad.json.error as { message: string; param: string };
    assert.equal(error.param, 'user', path);
    assert.match(error.message, /^user: .*expected string/, path);
    // null is no user at all; the embedding and rerank routes then find 'm' generates text.
    const ok = await post(`${server.url}${path}`, { ...body, user: null });
    assert.notEqual((ok.json.error as { param?: string } | undefined)?.param, 'user', path);
  }
});
