import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import { resolveServeConfig } from '../../src/server/config.ts';
import { hostOf, isAllowedHost } from '../../src/server/host-check.ts';
import { type RunningServer, startServer } from '../../src/server/serve.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { addToHubCache, readModelFolder } from '../helpers/hf-cache.ts';
import { FakeSource } from './fake-engine.ts';
import { request, startTestServer } from './harness.ts';

const LLAMA = join(projectRoot, 'test/fixtures/models/tiny-llama');

let root = '';
let server: RunningServer;
let ollama: Ollama;
let port = '';
const savedEnv = { ...process.env };

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-browser-guard-'));
  process.env.PAGODA_MODELS = join(root, 'models');
  process.env.HF_HUB_CACHE = join(root, 'hf');
  process.env.PAGODA_LOG_LEVEL = 'silent';
  addToHubCache(join(root, 'hf'), 'pagoda-test/tiny-llama', readModelFolder(LLAMA));
  const config = { ...resolveServeConfig({ port: 0, host: '127.0.0.1' }, {}), models: ['pagoda-test/tiny-llama'] };
  server = await startServer(config, { log: () => {} }, () => {});
  await server.ready;
  port = new URL(server.url).port;
  ollama = new Ollama({ host: server.url });
  await ollama.create({ model: 'kept', from: 'pagoda-test/tiny-llama' });
});

after(async () => {
  await server?.shutdown();
  process.env = savedEnv;
  rmSync(root, { recursive: true, force: true });
});

const names = async () => (await ollama.list()).models.map((m) => m.name).sort();

test('Host values a loopback server accepts, as Ollama: local names and addresses only', () => {
  assert.equal(hostOf('LocalHost:11434'), 'localhost');
  assert.equal(hostOf('[::1]:11434'), '::1');
  assert.equal(hostOf('fe80::1'), 'fe80::1');
  assert.equal(hostOf('example.org'), 'example.org');
  const allowed = [
    '',
    'localhost',
    '127.0.0.1',
    '127.8.9.10',
    '::1',
    '::ffff:127.0.0.1',
    '0.0.0.0',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.20',
    'fd12:3456::1',
    'fe80::1',
    'app.localhost',
    'printer.local',
    'api.internal',
    hostname().toLowerCase(),
  ];
  for (const host of allowed) assert.ok(isAllowedHost(host), host);
  const refused = ['attacker.example', '8.8.8.8', '172.32.0.1', '192.169.0.1', '2001:db8::1', 'localhost.evil.com'];
  for (const host of refused) assert.ok(!isAllowedHost(host), host);
});

test('DNS rebinding: a foreign Host (with its matching Origin) gets 403 on every route that acts; nothing changes', async () => {
  const before = await names();
  const attacker = `attacker.example:${port}`;
  const headers = { host: attacker, origin: `http://${attacker}`, 'content-type': 'text/plain' };
  const requests: [string, string, unknown][] = [
    ['POST', '/api/copy', { source: 'kept', destination: 'stolen' }],
    ['DELETE', '/api/delete', { model: 'kept' }],
    ['POST', '/api/create', { model: 'made', from: 'pagoda-test/tiny-llama' }],
    ['POST', '/api/generate', { model: 'kept', prompt: 'hi', stream: false }],
    ['POST', '/api/pull', { model: 'acme/anything' }],
    ['POST', '/v1/chat/completions', { model: 'kept', messages: [{ role: 'user', content: 'hi' }] }],
  ];
  for (const [method, path, body] of requests) {
    for (const h of [headers, { host: attacker }]) {
      const r = await request(`${server.url}${path}`, { method, body, headers: h });
      assert.equal(r.status, 403, `${method} ${path} with ${JSON.stringify(h)}: ${r.text}`);
      const error = r.json.error as string | { message: string };
      assert.match(typeof error === 'string' ? error : error.message, /host "attacker\.example:\d+" is not allowed/);
    }
  }
  assert.equal((await request(`${server.url}/api/tags`, { headers: { host: attacker } })).status, 403);
  assert.deepEqual(await names(), before);
  assert.deepEqual(before, ['kept:latest', 'pagoda-test/tiny-llama:latest']);
  // The same request under a local name passes the check.
  const local = await request(`${server.url}/api/copy`, {
    body: { source: 'kept', destination: 'copied' },
    headers: { host: `localhost:${port}` },
  });
  assert.equal(local.status, 200, local.text);
  assert.ok((await names()).includes('copied:latest'));
});

test('cross-site browser requests get 403 whatever the content type; curl -d (form-encoded, no Origin) works', async () => {
  const body = JSON.stringify({ model: 'kept', prompt: 'hi', stream: false, options: { num_predict: 2 } });
  const foreign = await request(`${server.url}/api/generate`, {
    body,
    headers: { origin: 'http://evil.example', 'content-type': 'text/plain' },
  });
  assert.equal(foreign.status, 403);
  assert.match(String(foreign.json.error), /origin "http:\/\/evil\.example" is not allowed/);
  const marked = await request(`${server.url}/api/generate`, {
    body,
    headers: { 'sec-fetch-site': 'cross-site', 'content-type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(marked.status, 403);
  assert.match(String(marked.json.error), /cross-site/);
  // Reading is not acting: a cross-site navigation to a GET route is answered (the browser keeps the body from
  // a foreign page without CORS headers anyway).
  assert.equal(
    (await request(`${server.url}/api/version`, { headers: { 'sec-fetch-site': 'cross-site' } })).status,
    200,
  );
  for (const site of ['same-origin', 'none']) {
    const ok = await request(`${server.url}/api/generate`, { body, headers: { 'sec-fetch-site': site } });
    assert.equal(ok.status, 200, `${site}: ${ok.text}`);
  }
  const curl = await request(`${server.url}/api/generate`, {
    body,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(curl.status, 200, curl.text);
  assert.equal(curl.json.done, true);
});

test('bound beyond loopback: any Host is served, but an Origin that merely equals a foreign Host is refused', async () => {
  const open = await startTestServer(new FakeSource(), [{ name: 'm', path: '/m', ref: 'm' }], { host: '0.0.0.0' });
  const openPort = new URL(open.url).port;
  try {
    const named = `pagoda.example.org:${openPort}`;
    assert.equal((await request(`${open.url}/api/tags`, { headers: { host: named } })).status, 200);
    const rebound = await request(`${open.url}/api/generate`, {
      body: { model: 'm', prompt: 'x' },
      headers: { host: named, origin: `http://${named}` },
    });
    assert.equal(rebound.status, 403);
    const lan = `192.168.1.7:${openPort}`;
    const sameOrigin = await request(`${open.url}/api/tags`, { headers: { host: lan, origin: `http://${lan}` } });
    assert.equal(sameOrigin.status, 200);
  } finally {
    await open.close();
  }
});

test('with PAGODA_ORIGINS, an allowed origin may act cross-site', async () => {
  const open = await startTestServer(new FakeSource(), [{ name: 'm', path: '/m', ref: 'm' }], {
    origins: ['http://app.example'],
  });
  try {
    const r = await request(`${open.url}/api/generate`, {
      body: { model: 'm', prompt: 'x', stream: false, options: { num_predict: 2 } },
      headers: { origin: 'http://app.example', 'sec-fetch-site': 'cross-site' },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['access-control-allow-origin'], 'http://app.example');
  } finally {
    await open.close();
  }
});
