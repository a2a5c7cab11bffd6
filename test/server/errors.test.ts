import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import zlib from 'node:zlib';
import OpenAI from 'openai';
import { post, request } from './harness.ts';
import { type ServedModel, startServed } from './served.ts';

let server: ServedModel;
before(async () => {
  server = await startServed();
});
after(() => server.close());

const chat = () => `${server.url}/v1/chat/completions`;
const generate = () => `${server.url}/api/generate`;
const msgs = [{ role: 'user', content: 'hi' }];

function assertOpenAIError(r: { status: number; json: Record<string, unknown> }, status: number, param?: string) {
  assert.equal(r.status, status);
  const e = r.json.error as Record<string, unknown>;
  assert.equal(typeof e.message, 'string');
  assert.equal(typeof e.type, 'string');
  assert.ok('param' in e && 'code' in e);
  if (param !== undefined) assert.equal(e.param, param);
}

function assertOllamaError(r: { status: number; json: Record<string, unknown> }, status: number, pattern?: RegExp) {
  assert.equal(r.status, status);
  assert.deepEqual(Object.keys(r.json), ['error']);
  assert.equal(typeof r.json.error, 'string');
  if (pattern) assert.match(r.json.error as string, pattern);
}

test("unknown routes 404 and known paths with another method 405 (with Allow), in their API's shape", async () => {
  for (const [method, path] of [
    ['POST', '/v1/nope'],
    ['GET', '/v2/nope'],
    ['POST', '/v2'],
  ]) {
    const r = await request(`${server.url}${path}`, { method, body: method === 'POST' ? {} : undefined });
    assertOpenAIError(r, 404);
    assert.match((r.json.error as { message: string }).message, new RegExp(`^${method} ${path} not found$`));
  }
  const wrong = await request(chat());
  assertOpenAIError(wrong, 405);
  assert.equal(
    (wrong.json.error as { message: string }).message,
    'GET is not allowed on /v1/chat/completions (it takes POST)',
  );
  assert.equal(wrong.headers.allow, 'POST');
  // A parametric path, and an Ollama route: Ollama's shape.
  const model = await request(`${server.url}/v1/models/${server.model}`, { method: 'DELETE' });
  assertOpenAIError(model, 405);
  assert.match(String(model.headers.allow), /GET/);
  assertOllamaError(
    await request(`${server.url}/api/tags`, { method: 'DELETE' }),
    405,
    /^DELETE is not allowed on \/api\/tags \(it takes GET, HEAD\)$/,
  );
  assertOllamaError(await request(`${server.url}/api/nope`), 404, /^GET \/api\/nope not found$/);
});

test('a gzip-compressed body is decoded; an unknown Content-Encoding is a 415 naming it', async () => {
  const body = zlib.gzipSync(
    JSON.stringify({ model: server.model, prompt: 'x', stream: false, options: { num_predict: 1 } }),
  );
  const r = await post(generate(), body, { 'content-encoding': 'gzip' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.done, true);
  assertOllamaError(await post(generate(), body, { 'content-encoding': 'zstd' }), 415, /"zstd" is not supported/);
  assertOpenAIError(await post(chat(), body, { 'content-encoding': 'compress' }), 415);
});

test('malformed JSON, wrong types, invalid UTF-8: 400 in each API shape', async () => {
  assertOpenAIError(await post(chat(), '{"model":'), 400);
  assertOllamaError(await post(generate(), '{"model":'), 400, /not valid JSON/);
  assertOpenAIError(await post(chat(), { model: server.model, messages: 'hi' }), 400, 'messages');
  assertOpenAIError(
    await post(chat(), { model: server.model, messages: msgs, temperature: 'hot' }),
    400,
    'temperature',
  );
  assertOllamaError(await post(generate(), { model: server.model, prompt: 7 }), 400, /prompt/);
  const bad = Buffer.concat([Buffer.from('{"model":"'), Buffer.from([0xc3, 0x28]), Buffer.from('","prompt":"x"}')]);
  assertOllamaError(await post(generate(), bad), 400, /UTF-8/);
  assertOpenAIError(await post(chat(), bad), 400);
  assertOllamaError(await post(generate(), '{"model":"m","prompt":"\\ud800"}'), 400, /surrogate/);
  assertOllamaError(await post(generate(), '[1,2]'), 400, /JSON object/);
  assertOllamaError(await post(generate(), ''), 400, /required/);
});

test('unknown model: 404 in each shape', async () => {
  assertOpenAIError(await post(chat(), { model: 'nope', messages: msgs }), 404, 'model');
  assertOllamaError(await post(generate(), { model: '../../etc/passwd', prompt: 'x' }), 404, /not found/);
  assertOllamaError(await post(`${server.url}/api/show`, { model: 'nope' }), 404);
});

test('a prompt longer than the context: 400 naming both numbers', async () => {
  const long = 'word '.repeat(1500);
  const r = await post(chat(), { model: server.model, messages: [{ role: 'user', content: long }] });
  assertOpenAIError(r, 400);
  const m = /the prompt is (\d+) tokens, but the model's context length is (\d+) tokens/.exec(
    (r.json.error as { message: string }).message,
  );
  assert.ok(m, (r.json.error as { message: string }).message);
  assert.ok(Number(m[1]) > Number(m[2]));
  assertOllamaError(
    await post(generate(), { model: server.model, prompt: long }),
    400,
    /prompt is \d+ tokens.*context length is \d+/,
  );
  const huge = await post(`${server.url}/v1/completions`, { model: server.model, prompt: 'hi', max_tokens: 1e9 });
  assertOpenAIError(huge, 400, 'max_tokens');
  assert.match(
    (huge.json.error as { message: string }).message,
    /context length is \d+ tokens, but \d+ were requested/,
  );
});

test('a request larger than the whole KV cache: the engine refuses it, a 400 with both numbers', async () => {
  const small = await startServed({}, undefined, { kvCacheMemory: 4 * 12 * 1024, blockSize: 16 });
  try {
    const r = await post(`${small.url}/v1/completions`, { model: small.model, prompt: 'hello', max_tokens: 200 });
    assertOpenAIError(r, 400);
    assert.match((r.json.error as { message: string }).message, /\d+.*\d+/);
    const s = small.stats();
    assert.equal(s.freeBlocks, s.totalBlocks);
    const ok = await post(`${small.url}/v1/completions`, { model: small.model, prompt: 'hello', max_tokens: 4 });
    assert.equal(ok.status, 200);
  } finally {
    await small.close();
  }
});

test('negative and huge limits, out-of-range values, unsupported fields: 400', async () => {
  assertOpenAIError(await post(chat(), { model: server.model, messages: msgs, max_tokens: -5 }), 400, 'max_tokens');
  assertOpenAIError(await post(chat(), { model: server.model, messages: msgs, n: 1000 }), 400, 'n');
  assertOpenAIError(
    await post(chat(), { model: server.model, messages: msgs, top_logprobs: 50, logprobs: true }),
    400,
    'top_logprobs',
  );
  assertOpenAIError(
    await post(chat(), { model: server.model, messages: msgs, logit_bias: { 99999: 1 } }),
    400,
    'logit_bias',
  );
  assertOpenAIError(
    await post(chat(), { model: server.model, messages: msgs, tools: [{ type: 'function' }] }),
    400,
    'tools[0].function',
  );
  assertOpenAIError(await post(chat(), { model: server.model, messages: msgs, frobnicate: true }), 400, 'frobnicate');
  assertOpenAIError(
    await post(chat(), {
      model: server.model,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }],
    }),
    400,
  );
  assertOllamaError(
    await post(generate(), { model: server.model, prompt: 'x', options: { num_predict: -7 } }),
    400,
    /num_predict/,
  );
  assertOllamaError(await post(generate(), { model: server.model, prompt: 'x', format: 'yaml' }), 400, /format/);
  assertOllamaError(await post(generate(), { model: server.model, prompt: 'x', think: 'maximum' }), 400, /think/);
  assertOllamaError(await post(generate(), { model: server.model, prompt: 'x', images: ['aGk='] }), 400, /images/);
  assertOllamaError(
    await post(generate(), { model: server.model, prompt: 'x', options: { mirostat: 3 } }),
    400,
    /mirostat/,
  );
  assertOllamaError(
    await post(`${server.url}/api/chat`, { model: server.model, messages: msgs, tools: [{}] }),
    400,
    /tool/,
  );
});

test("vLLM's GET /version gives the server's version", async () => {
  const r = await request(`${server.url}/version`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { version: '0.0.0-test' });
});

test('unknown routes and methods are JSON 404s; HEAD / and /health answer', async () => {
  assertOllamaError(await request(`${server.url}/api/nothing`), 404);
  assertOpenAIError(await request(`${server.url}/v1/nothing`), 404);
  assert.equal((await request(`${server.url}/`, { method: 'HEAD' })).status, 200);
  assert.deepEqual((await request(`${server.url}/health`)).json, {
    status: 'ok',
    models: { ready: ['tiny-llama'], loading: [] },
  });
});

test('/metrics exposes engine and latency series', async () => {
  await post(generate(), { model: server.model, prompt: 'x', stream: false, options: { num_predict: 3 } });
  const text = (await request(`${server.url}/metrics`)).text;
  for (const name of [
    'pagoda_num_requests_running',
    'pagoda_num_requests_waiting',
    'pagoda_kv_cache_usage_perc',
    'pagoda_prefix_cache_hit_rate',
    'pagoda_num_preemptions_total',
    'pagoda_prefix_cache_hits_total',
    'pagoda_prefix_cache_queries_total',
    'pagoda_engine_steps_total',
    'pagoda_prompt_tokens_total',
    'pagoda_generation_tokens_total',
    'pagoda_time_to_first_token_seconds_bucket',
    'pagoda_inter_token_latency_seconds_bucket',
    'pagoda_e2e_request_latency_seconds_bucket',
    'pagoda_request_success_total',
  ]) {
    assert.match(text, new RegExp(`^${name}`, 'm'), name);
  }
  assert.match(text, /pagoda_generation_tokens_total\{model_name="tiny-llama"\} [1-9]/);
  // Running totals are counters, as vLLM's are (rate() needs them so).
  assert.match(text, /^# TYPE pagoda_num_preemptions_total counter$/m);
  assert.match(text, /^# TYPE pagoda_prefix_cache_queries_total counter$/m);
  // A prompt the engine refuses (longer than the context) reads nothing: the counters stay.
  const series = (t: string) =>
    ['pagoda_prompt_tokens_total{', 'pagoda_e2e_request_latency_seconds_count{'].map((n) =>
      t.split('\n').find((l) => l.startsWith(n)),
    );
  const before = series(text);
  const refused = await post(generate(), { model: server.model, prompt: 'x '.repeat(4000), stream: false });
  assert.equal(refused.status, 400);
  assert.deepEqual(series((await request(`${server.url}/metrics`)).text), before);
});

test('/metrics includes the process and Node.js metrics', async () => {
  const text = (await request(`${server.url}/metrics`)).text;
  for (const name of [
    'process_cpu_seconds_total',
    'process_resident_memory_bytes',
    'process_start_time_seconds',
    'nodejs_eventloop_lag_seconds',
    'nodejs_heap_size_used_bytes',
  ]) {
    assert.match(text, new RegExp(`^${name} \\d`, 'm'), name);
  }
});

test('auth: Bearer key on every route but /health and /ping', async () => {
  const secured = await startServed({ apiKey: 'sekrit' });
  try {
    assertOllamaError(await post(`${secured.url}/api/generate`, { model: secured.model, prompt: 'x' }), 401, /API key/);
    assertOpenAIError(await request(`${secured.url}/v1/models`, { headers: { authorization: 'Bearer wrong' } }), 401);
    assert.equal((await request(`${secured.url}/api/tags`)).status, 401);
    assert.equal((await request(`${secured.url}/metrics`)).status, 401);
    assert.equal((await request(`${secured.url}/health`)).status, 200);
    assert.equal((await request(`${secured.url}/health?probe=1`)).status, 200, 'with a query string too');
    assert.equal((await request(`${secured.url}/ping`)).status, 200, "vLLM's probe too");
    assert.equal((await request(`${secured.url}/version`)).status, 401);
    assert.equal(
      (await request(`${secured.url}/api/tags`, { headers: { authorization: 'Bearer sekrit' } })).status,
      200,
    );
    const client = new OpenAI({ baseURL: `${secured.url}/v1`, apiKey: 'sekrit', maxRetries: 0 });
    const r = await client.chat.completions.create({
      model: secured.model,
      messages: [{ role: 'user', content: 'x' }],
      max_tokens: 2,
    });
    assert.equal(r.choices.length, 1);
    const wrong = new OpenAI({ baseURL: `${secured.url}/v1`, apiKey: 'nope', maxRetries: 0 });
    await assert.rejects(wrong.models.list(), (err: unknown) => err instanceof OpenAI.AuthenticationError);
  } finally {
    await secured.close();
  }
});

test('body limit: 413 in the API shape, server still answers', async () => {
  const small = await startServed({ bodyLimitBytes: 2048 });
  try {
    const big = { model: small.model, messages: [{ role: 'user', content: 'x'.repeat(4096) }] };
    assertOpenAIError(await post(`${small.url}/v1/chat/completions`, big), 413);
    assertOllamaError(await post(`${small.url}/api/chat`, big), 413, /larger than the limit/);
    assert.equal((await request(`${small.url}/health`)).status, 200);
  } finally {
    await small.close();
  }
});

test('CORS: off by default (foreign origins refused), on for PAGODA_ORIGINS', async () => {
  const evil = { origin: 'http://evil.example' };
  assertOllamaError(await request(`${server.url}/api/tags`, { headers: evil }), 403, /PAGODA_ORIGINS/);
  const same = await request(`${server.url}/api/tags`, { headers: { origin: server.url } });
  assert.equal(same.status, 200);
  assert.equal(same.headers['access-control-allow-origin'], undefined);
  const open = await startServed({ origins: ['http://localhost:*'] });
  try {
    const ok = await request(`${open.url}/api/tags`, { headers: { origin: 'http://localhost:3000' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['access-control-allow-origin'], 'http://localhost:3000');
    const pre = await request(`${open.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.status, 204);
    assert.match(String(pre.headers['access-control-allow-methods']), /POST/);
    assert.equal((await request(`${open.url}/api/tags`, { headers: evil })).status, 403);
  } finally {
    await open.close();
  }
});

test('past the queue limit: 503 with Retry-After', async () => {
  const busy = await startServed({ numParallel: 1, maxQueue: 1 }, 20);
  try {
    const body = { model: busy.model, prompt: 'x', stream: false, options: { num_predict: 10 } };
    const running = Promise.all([1, 2, 3, 4].map(() => post(`${busy.url}/api/generate`, body)));
    // Counting tokens takes no room in the engine: it is answered while the queue is full.
    await new Promise((r) => setTimeout(r, 40));
    const counted = await post(`${busy.url}/tokenize`, { model: busy.model, prompt: 'x' });
    assert.equal(counted.status, 200, counted.text);
    const results = await running;
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 503, 503]);
    const refused = results.find((r) => r.status === 503)!;
    assert.equal(refused.headers['retry-after'], '1');
    assertOllamaError(refused, 503, /busy/);
    assert.equal((await post(`${busy.url}/api/generate`, body)).status, 200);
  } finally {
    await busy.close();
  }
});
