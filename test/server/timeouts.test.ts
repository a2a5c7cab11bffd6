import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { FakeSource } from './fake-engine.ts';
import { startTestServer, type TestServer } from './harness.ts';

let server: TestServer;
before(async () => {
  // Tokens every 60 ms: a 40-token answer streams for about 2.4 s, well past both timeouts. The timeouts leave a
  // loaded machine time to read a request that arrives whole.
  server = await startTestServer(new FakeSource({ tokenDelayMs: 60 }), [{ name: 'm', path: '/m', ref: 'm' }], {
    headersTimeoutMs: 800,
    requestTimeoutMs: 1200,
  });
});
after(() => server.close());

/** Writes `sent` on a raw connection, then stalls; resolves with what came back and when the server closed it. */
function stall(sent: string): Promise<{ ms: number; reply: string }> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(sent));
    let reply = '';
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ ms: performance.now() - start, reply }));
    setTimeout(() => {
      socket.destroy();
      reject(new Error('the server kept a stalled request open for 8 s'));
    }, 8000).unref();
  });
}

test('a client that sends headers and half a body, then stalls, is closed at the request timeout', async () => {
  const body = JSON.stringify({ model: 'm', prompt: 'x', stream: false });
  const head =
    'POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
    `Content-Length: ${body.length}\r\n\r\n`;
  const r = await stall(head + body.slice(0, body.length / 2));
  assert.ok(r.ms >= 1150, `closed after ${r.ms} ms, before the 1,200 ms timeout`);
  assert.ok(r.ms < 6000, `closed after ${r.ms} ms`);
  assert.match(r.reply, /^HTTP\/1\.1 408/);
  assert.equal(server.ctx.gate.size, 0, 'nothing reached the engine');
});

test('a client that stalls inside its headers is closed at the headers timeout', async () => {
  const r = await stall('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
  assert.ok(r.ms >= 750 && r.ms < 6000, `closed after ${r.ms} ms`);
  assert.match(r.reply, /^HTTP\/1\.1 408/);
});

test('answers that take longer than the timeouts are not cut: streamed and not', async () => {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const start = performance.now();
  const stream = await client.completions.create({ model: 'm', prompt: 'x', max_tokens: 40, stream: true });
  let text = '';
  let finish: string | null = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.ok(performance.now() - start > 1500, 'the stream outlasted the timeouts');
  assert.equal(text.length, 40);
  assert.equal(finish, 'length');
  const whole = await client.completions.create({ model: 'm', prompt: 'x', max_tokens: 40 });
  assert.equal(whole.choices[0].text, text);
});
