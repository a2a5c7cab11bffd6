import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import { FakeSource } from './fake-engine.ts';
import { eventually, request, startTestServer, type TestServer } from './harness.ts';

let server: TestServer;
let ollama: Ollama;
before(async () => {
  // 20 ms per token; the server's own keep-alive is the default 5 minutes.
  server = await startTestServer(new FakeSource({ tokenDelayMs: 20 }), [{ name: 'm', path: '/m', ref: 'm' }]);
  ollama = new Ollama({ host: server.url });
});
after(() => server.close());

const resident = () => server.ctx.registry.resident().length;

test('keep_alive 0 while requests are in flight unloads the model as soon as they finish', async () => {
  const running = ollama.generate({ model: 'm', prompt: 'x', options: { num_predict: 25 } });
  await eventually(() => resident() === 1 && server.ctx.gate.size === 1, 2000, 'the request to start');
  const stop = await ollama.generate({ model: 'm', prompt: '', keep_alive: 0 });
  assert.equal(stop.done_reason, 'unload');
  assert.equal(resident(), 1, 'still busy');
  const r = await running;
  assert.equal(r.eval_count, 25, 'the request in flight ran to its end');
  await eventually(() => resident() === 0, 500, 'the unload after the last request');
});

test("the latest request's keep_alive wins, as in Ollama", async () => {
  const first = ollama.generate({ model: 'm', prompt: 'x', options: { num_predict: 15 }, keep_alive: 0 });
  await eventually(() => server.ctx.gate.size === 1, 2000, 'the request to start');
  await ollama.generate({ model: 'm', prompt: 'y', options: { num_predict: 1 }, keep_alive: '1h' });
  await first;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(resident(), 1);
  const expires = server.ctx.registry.resident()[0].expiresAt!.getTime();
  assert.ok(expires > Date.now() + 59 * 60_000, 'kept for the hour the later request asked');
});

test('/api/ps reports a model kept with keep_alive -1 as Ollama does: now plus 2^63 ns (~292 years)', async () => {
  await ollama.generate({ model: 'm', prompt: 'x', options: { num_predict: 1 }, keep_alive: -1 });
  const ps = await request(`${server.url}/api/ps`);
  const ahead = Date.parse((ps.json as { models: { expires_at: string }[] }).models[0]!.expires_at) - Date.now();
  assert.ok(Math.abs(ahead - 2 ** 63 / 1e6) < 60_000, `expires ${ahead} ms ahead`);
});
