import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { STATIC_DIR } from '../../src/server/ui/routes.ts';
import { FakeSource } from './fake-engine.ts';
import { request, startTestServer, type TestServer } from './harness.ts';

const KEY = 'sekrit';
let open: TestServer;
let keyed: TestServer;
let off: TestServer;

before(async () => {
  const entries = [{ name: 'm', path: '/nowhere/m', ref: 'm' }];
  open = await startTestServer(new FakeSource(), entries);
  keyed = await startTestServer(new FakeSource(), entries, { apiKey: KEY });
  off = await startTestServer(new FakeSource(), entries, { ui: false });
});

after(async () => {
  await Promise.all([open?.close(), keyed?.close(), off?.close()]);
});

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

test('a browser at / is sent to /ui/; clients that probe / get the usual answer', async () => {
  const browser = await request(`${open.url}/`, { headers: { accept: BROWSER_ACCEPT } });
  assert.equal(browser.status, 302);
  assert.equal(browser.headers.location, 'ui/');
  for (const accept of [undefined, '*/*', 'application/json']) {
    const probe = await request(`${open.url}/`, { headers: accept ? { accept } : {} });
    assert.equal(probe.status, 200);
    assert.equal(probe.text, 'pagoda is running');
  }
  assert.equal((await request(`${open.url}/`, { method: 'HEAD' })).status, 200);
  const bare = await request(`${open.url}/ui?x=1`);
  assert.equal(bare.status, 302);
  assert.equal(bare.headers.location, 'ui/?x=1');
});

test("the page's files are served with their types, a strict CSP and ETags; nothing else is", async () => {
  const page = await request(`${open.url}/ui/`);
  assert.equal(page.status, 200);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  assert.match(String(page.headers['content-security-policy']), /script-src 'self';/);
  assert.doesNotMatch(String(page.headers['content-security-policy']), /unsafe-inline|unsafe-eval/);
  assert.match(page.text, /<script type="module" src="app.js"><\/script>/);
  const script = await request(`${open.url}/ui/app.js`);
  assert.equal(script.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(script.text, readFileSync(join(STATIC_DIR, 'app.js'), 'utf8'));
  assert.equal((await request(`${open.url}/ui/style.css`)).headers['content-type'], 'text/css; charset=utf-8');
  const again = await request(`${open.url}/ui/app.js`, { headers: { 'if-none-match': String(script.headers.etag) } });
  assert.equal(again.status, 304);
  for (const path of ['/ui/nothing.js', '/ui/..%2Froutes.ts', '/ui/%2e%2e/routes.ts', '/ui/../../package.json']) {
    assert.equal((await request(`${open.url}${path}`)).status, 404, path);
  }
});

test('behind --api-key the page loads without the key; the APIs still want it', async () => {
  for (const path of ['/ui/', '/ui/app.js', '/ui/style.css', '/ui/icon.svg']) {
    assert.equal((await request(`${keyed.url}${path}`)).status, 200, path);
  }
  assert.equal((await request(`${keyed.url}/`, { headers: { accept: BROWSER_ACCEPT } })).status, 302);
  for (const path of ['/', '/api/tags', '/metrics', '/v1/models']) {
    assert.equal((await request(`${keyed.url}${path}`)).status, 401, path);
  }
  assert.equal((await request(`${keyed.url}/ui/x`, { method: 'POST', body: {} })).status, 401, 'only reads are open');
  const tags = await request(`${keyed.url}/api/tags`, { headers: { authorization: `Bearer ${KEY}` } });
  assert.equal(tags.status, 200);
});

test('--no-ui: no page, and / answers browsers as it answers clients', async () => {
  assert.equal((await request(`${off.url}/ui/`)).status, 404);
  const root = await request(`${off.url}/`, { headers: { accept: BROWSER_ACCEPT } });
  assert.equal(root.status, 200);
  assert.equal(root.text, 'pagoda is running');
});

test('the page is small, and every file in its folder is used', () => {
  const files = readdirSync(STATIC_DIR);
  const bytes = files.reduce((n, f) => n + statSync(join(STATIC_DIR, f)).size, 0);
  assert.ok(bytes < 80 * 1024, `the page is ${bytes} bytes`);
  const sources = files.map((f) => readFileSync(join(STATIC_DIR, f), 'utf8')).join('\n');
  for (const file of files.filter((f) => f !== 'index.html')) {
    assert.ok(sources.includes(`'./${file}'`) || sources.includes(`"${file}"`), `${file} is referenced`);
  }
});
