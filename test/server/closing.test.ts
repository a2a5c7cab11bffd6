import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import pino from 'pino';
import { buildApp } from '../../src/server/app.ts';
import { resolveServeConfig } from '../../src/server/config.ts';
import { ModelRegistry } from '../../src/server/models.ts';
import { FakeSource } from './fake-engine.ts';

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a request that arrives while the server shuts down gets a 503 in its API shape, with Retry-After', async () => {
  const source = new FakeSource({ tokenDelayMs: 20, script: 'abcdefghij' }, 4096, 8);
  const registry = new ModelRegistry([{ name: 'm', path: '/nowhere', ref: '/nowhere' }], source, {
    maxLoaded: 1,
    keepAliveMs: 60_000,
  });
  const { app } = buildApp(resolveServeConfig({}, {}), registry, pino({ level: 'silent' }), 'test');
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const socket = connect(typeof address === 'object' && address ? address.port : 0, '127.0.0.1');
  let text = '';
  socket.on('data', (d) => (text += d));
  const ended = new Promise((r) => socket.on('close', r));
  const send = (body: unknown) => {
    const json = JSON.stringify(body);
    socket.write(
      'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        `Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
    );
  };
  const chat = { model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 10 };
  // An answer streams on this connection when the shutdown starts (as `pagoda serve` closes on SIGTERM); the next
  // request on the same connection comes after it.
  send({ ...chat, stream: true });
  while (!text.includes('data: ')) await wait(5);
  const closing = app.close();
  await wait(20);
  send(chat);
  await closing;
  await ended;
  await registry.shutdown();
  assert.match(text, /data: \[DONE\]/, 'the answer in flight finished');
  const second = text.slice(text.lastIndexOf('HTTP/1.1 '));
  assert.match(second, /^HTTP\/1\.1 503/);
  assert.match(second, /retry-after: 5/i);
  const body = JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4));
  assert.equal(body.error.message, 'the server is shutting down');
});
