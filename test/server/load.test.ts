import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { eventually, request } from './harness.ts';
import { type ServedModel, startServed } from './served.ts';

let server: ServedModel;
before(async () => {
  server = await startServed({ numParallel: 64, maxQueue: 512 });
});
after(() => server.close());

function assertNoLeaks() {
  const s = server.stats();
  assert.equal(s.running, 0, 'no request left running');
  assert.equal(s.waiting, 0, 'no request left waiting');
  assert.equal(s.freeBlocks, s.totalBlocks, 'every KV block free');
  assert.equal(server.ctx.gate.size, 0, 'no request admitted');
}

test('200 concurrent streaming requests, OpenAI and Ollama mixed, all complete', async () => {
  const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const ollama = new Ollama({ host: server.url });
  const maxTokens = 6;
  const one = async (i: number): Promise<string> => {
    const kind = i % 4;
    let finish = '';
    let tokens = 0;
    if (kind < 2) {
      // Both OpenAI routes stream the same chunks' finish_reason and a last usage chunk.
      const streamed = {
        model: server.model,
        max_tokens: maxTokens,
        stream: true as const,
        stream_options: { include_usage: true },
      };
      const s =
        kind === 0
          ? await openai.chat.completions.create({ ...streamed, messages: [{ role: 'user', content: `request ${i}` }] })
          : await openai.completions.create({ ...streamed, prompt: `request ${i}` });
      for await (const c of s) {
        finish = c.choices[0]?.finish_reason ?? finish;
        tokens = c.usage?.completion_tokens ?? tokens;
      }
    } else if (kind === 2) {
      const s = await ollama.generate({
        model: server.model,
        prompt: `request ${i}`,
        stream: true,
        options: { num_predict: maxTokens },
      });
      for await (const c of s) if (c.done) [finish, tokens] = [c.done_reason, c.eval_count];
    } else {
      const s = await ollama.chat({
        model: server.model,
        messages: [{ role: 'user', content: `request ${i}` }],
        stream: true,
        options: { num_predict: maxTokens },
      });
      for await (const c of s) if (c.done) [finish, tokens] = [c.done_reason, c.eval_count];
    }
    // The model may pick its end-of-sequence token before the limit.
    const ok =
      (finish === 'length' && tokens === maxTokens) || (finish === 'stop' && tokens >= 1 && tokens <= maxTokens);
    assert.ok(ok, `request ${i}: finish ${finish} after ${tokens} tokens`);
    return finish;
  };
  const finishes = await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
  assert.ok(finishes.filter((f) => f === 'length').length > 100, 'most run to the limit');
  await eventually(() => server.stats().running === 0, 5000, 'engine idle');
  assertNoLeaks();
});

/** Starts a streaming request and destroys the socket after `chunks` chunks arrived; -1 if it ended first. */
function disconnectAfter(path: string, body: unknown, chunks: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${server.url}${path}`,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        let seen = 0;
        res.on('data', () => {
          if (++seen === chunks) {
            req.destroy();
            resolve(seen);
          }
        });
        res.on('end', () => resolve(-1));
      },
    );
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve(-1) : reject(err)));
    req.end(JSON.stringify(body));
  });
}

test('50 clients that disconnect mid-stream: requests aborted, KV blocks freed', async () => {
  const long = 200; // far more tokens than any client waits for
  const seen = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      i % 2
        ? disconnectAfter(
            '/v1/chat/completions',
            {
              model: server.model,
              messages: [{ role: 'user', content: `c${i}` }],
              max_tokens: long,
              ignore_eos: true,
              stream: true,
            },
            3,
          )
        : disconnectAfter(
            '/api/generate',
            { model: server.model, prompt: `g${i}`, options: { num_predict: long, temperature: 0 } },
            3,
          ),
    ),
  );
  // Ollama has no ignore_eos: a greedy continuation may end by itself before the client leaves.
  const left = seen.filter((n) => n === 3).length;
  assert.ok(left >= 40, `${left} of 50 left mid-stream`);
  await eventually(
    () => server.stats().running === 0 && server.ctx.gate.size === 0,
    5000,
    'aborted requests to be released',
  );
  assertNoLeaks();
  // The server is still fine.
  const r = await request(`${server.url}/api/generate`, {
    body: { model: server.model, prompt: 'x', stream: false, options: { num_predict: 2 } },
  });
  assert.equal(r.status, 200);
});

test('a non-streaming client that gives up is aborted too', async () => {
  const controller = new AbortController();
  const before = server.stats().generationTokens;
  const limit = 480;
  const pending = fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: server.model, prompt: 'x', max_tokens: limit, ignore_eos: true }),
    signal: controller.signal,
  }).catch((err: Error) => err.name);
  await eventually(() => server.stats().generationTokens > before, 5000, 'request to start');
  controller.abort();
  assert.equal(await pending, 'AbortError');
  await eventually(() => server.stats().running === 0 && server.ctx.gate.size === 0, 5000, 'abort to reach the engine');
  assert.ok(server.stats().generationTokens - before < limit, 'stopped before its limit');
  assertNoLeaks();
});
