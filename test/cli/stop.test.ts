import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { pagodaAsync } from '../helpers/cli.ts';
import { FakeSource } from '../server/fake-engine.ts';
import { request, startTestServer, type TestServer } from '../server/harness.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer(new FakeSource({ tokenDelayMs: 0 }), [
    { name: 'm:latest', path: '/m', ref: 'm' },
    { name: 'other', path: '/other', ref: 'other' },
  ]);
});
after(() => server.close());

/** `pagoda stop ARGS` against `host`: its exit code and output. */
async function stop(model: string, host = server.url) {
  try {
    const { stdout, stderr } = await pagodaAsync(['stop', model], { env: { ...process.env, PAGODA_HOST: host } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const { code, stdout, stderr } = err as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

const resident = () => server.ctx.registry.resident().map((r) => r.entry.name);

test('stop unloads a loaded model at once, named as ps lists it or without its :latest', async () => {
  for (const name of ['m:latest', 'm']) {
    await request(`${server.url}/api/generate`, {
      body: { model: 'm:latest', prompt: 'x', options: { num_predict: 1 } },
    });
    assert.deepEqual(resident(), ['m:latest']);
    const r = await stop(name);
    assert.deepEqual(r, { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(resident(), []);
  }
});

test('stop of a model not loaded succeeds and loads nothing; an unknown model is an error as ollama stop says it', async () => {
  assert.deepEqual(await stop('other'), { code: 0, stdout: '', stderr: '' });
  assert.deepEqual(resident(), []);
  const r = await stop('nope');
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `error: couldn't find model "nope" to stop\n`);
  assert.deepEqual(resident(), []);
});

test("Ollama's unload request (no prompt, keep_alive 0) for a model not loaded answers at once without loading it", async () => {
  for (const [path, body] of [
    ['/api/generate', { model: 'other', keep_alive: 0 }],
    ['/api/chat', { model: 'other', messages: [], keep_alive: 0 }],
  ] as const) {
    const res = await request(`${server.url}${path}`, { body });
    assert.equal(res.status, 200, res.text);
    assert.equal((res.json as { done_reason: string }).done_reason, 'unload');
    assert.deepEqual(resident(), []);
    assert.deepEqual(server.ctx.registry.loading(), []);
  }
});

test('stop with no server running names the URL it tried', async () => {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((done) => probe.close(done));
  const r = await stop('m', `127.0.0.1:${port}`);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    `error: no pagoda server is running at http://127.0.0.1:${port} (start one with \`pagoda serve\` or set PAGODA_HOST)\n`,
  );
});
