import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { type ServedModel, startServed } from './served.ts';

let server: ServedModel;
before(async () => {
  server = await startServed();
});
after(() => server.close());

/** Streams a POST and records each received piece with its arrival time. */
function streamPost(
  url: string,
  body: unknown,
): Promise<{ status: number; type: string; pieces: { at: number; data: string }[] }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const pieces: { at: number; data: string }[] = [];
      res.setEncoding('utf8');
      res.on('data', (data: string) => pieces.push({ at: performance.now() - t0, data }));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), pieces }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('OpenAI SSE framing: data lines, blank-line separated, usage chunk, [DONE] last', async () => {
  const r = await streamPost(`${server.url}/v1/chat/completions`, {
    model: server.model,
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 5,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.equal(r.status, 200);
  assert.equal(r.type, 'text/event-stream; charset=utf-8');
  const text = r.pieces.map((p) => p.data).join('');
  assert.ok(text.endsWith('data: [DONE]\n\n'));
  const events = text.split('\n\n').filter(Boolean);
  for (const e of events) assert.match(e, /^data: /);
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
  const ids = new Set(chunks.map((c) => c.id));
  assert.equal(ids.size, 1);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(typeof c.created, 'number');
    assert.equal(c.model, server.model);
    assert.ok('usage' in c);
  }
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 5);
  const finish = chunks.at(-2).choices[0];
  assert.deepEqual(finish.delta, {});
  assert.equal(finish.finish_reason, 'length');
});

/** A streamed completion with continuous usage stats, as its parsed `data:` chunks. */
async function usageChunks(body: Record<string, unknown>) {
  const r = await streamPost(`${server.url}/v1/completions`, {
    model: server.model,
    prompt: 'a',
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true, continuous_usage_stats: true },
    ...body,
  });
  return r.pieces
    .map((p) => p.data)
    .join('')
    .split('\n\n')
    .filter((e) => e.startsWith('data: {'))
    .map((e) => JSON.parse(e.slice(6)));
}

test('continuous_usage_stats: every chunk carries the usage so far', async () => {
  const chunks = await usageChunks({ max_tokens: 4 });
  const counts = chunks.map((c) => c.usage.completion_tokens);
  assert.deepEqual(
    counts,
    [...counts].sort((a, b) => a - b),
    'never decreasing',
  );
  assert.equal(counts.at(-1), 4);
  assert.ok(chunks.every((c) => c.usage.prompt_tokens > 0));
  // With n > 1 each chunk counts its own choice's tokens, as vLLM's do; the last chunk counts them all.
  const both = await usageChunks({ max_tokens: 3, n: 2, temperature: 1 });
  for (const index of [0, 1]) {
    const own = both.filter((c) => c.choices[0]?.index === index).map((c) => c.usage.completion_tokens);
    assert.equal(Math.max(...own), 3, `choice ${index}: ${own}`);
  }
  assert.equal(both.at(-1).usage.completion_tokens, 6);
  // With a list of prompts each chunk counts its own prompt; the last chunk counts them all.
  const two = await usageChunks({ max_tokens: 2, prompt: ['a', 'a b c d e f'] });
  const promptOf = (index: number) =>
    new Set(two.filter((c) => c.choices[0]?.index === index).map((c) => c.usage.prompt_tokens));
  const [first, second] = [promptOf(0), promptOf(1)];
  assert.equal(first.size, 1);
  assert.equal(second.size, 1);
  assert.ok([...first][0] < [...second][0], `${[...first]} < ${[...second]}`);
  assert.equal(two.at(-1).usage.prompt_tokens, [...first][0] + [...second][0]);
});

test('completions SSE without include_usage has no usage field', async () => {
  const r = await streamPost(`${server.url}/v1/completions`, {
    model: server.model,
    prompt: 'a',
    max_tokens: 3,
    stream: true,
  });
  const events = r.pieces
    .map((p) => p.data)
    .join('')
    .split('\n\n')
    .filter(Boolean);
  assert.equal(events.at(-1), 'data: [DONE]');
  for (const e of events.slice(0, -1)) {
    const c = JSON.parse(e.slice(6));
    assert.equal(c.object, 'text_completion');
    assert.ok(!('usage' in c));
  }
});

test('Ollama NDJSON framing: one JSON object per line, the last done with durations', async () => {
  const r = await streamPost(`${server.url}/api/chat`, {
    model: server.model,
    messages: [{ role: 'user', content: 'hi' }],
    options: { num_predict: 4, temperature: 0 },
  });
  assert.equal(r.status, 200);
  assert.equal(r.type, 'application/x-ndjson');
  const text = r.pieces.map((p) => p.data).join('');
  assert.ok(text.endsWith('\n'));
  const lines = text
    .split('\n')
    .slice(0, -1)
    .map((l) => JSON.parse(l));
  for (const l of lines.slice(0, -1)) {
    assert.equal(l.done, false);
    assert.equal(l.message.role, 'assistant');
    assert.ok(!Number.isNaN(Date.parse(l.created_at)));
  }
  const last = lines.at(-1);
  assert.equal(last.done, true);
  assert.equal(last.done_reason, 'length');
  assert.equal(last.eval_count, 4);
  assert.equal(last.message.content, '');
});

test('streaming is real: the first chunk arrives well before the last', async () => {
  const r = await streamPost(`${server.url}/v1/completions`, {
    model: server.model,
    prompt: 'Once upon a time',
    max_tokens: 100,
    ignore_eos: true,
    stream: true,
  });
  const first = r.pieces.find((p) => p.data.includes('"text":"'))!.at;
  const last = r.pieces.at(-1)!.at;
  assert.ok(r.pieces.length > 5, `${r.pieces.length} separate reads`);
  assert.ok(first < last / 2, `first chunk at ${first.toFixed(1)} ms, last at ${last.toFixed(1)} ms`);
});
