import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { warmWeightFiles } from '../../src/loader/warm-files.ts';
import { buildApp } from '../../src/server/app.ts';
import { resolveServeConfig } from '../../src/server/config.ts';
import { ApiError } from '../../src/server/errors.ts';
import { type ModelEntry, ModelRegistry } from '../../src/server/models.ts';
import { startServer } from '../../src/server/serve.ts';
import { UserError } from '../../src/util/errors.ts';
import { pagodaSync } from '../helpers/cli.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { FakeSource } from './fake-engine.ts';
import { request } from './harness.ts';

const entry = (name: string, pinned = false): ModelEntry => ({ name, path: `/models/${name}`, ref: name, pinned });

/** A FakeSource whose loads wait until `finish(name)` is called. */
function slowSource() {
  const source = new FakeSource();
  const load = source.load.bind(source);
  const gates = new Map<string, () => void>();
  source.load = async (e) => {
    await new Promise<void>((resolve) => gates.set(e.name, resolve));
    return load(e);
  };
  const finish = (name: string) => gates.get(name)!();
  return { source, finish, started: (name: string) => gates.has(name) };
}

test('/health is 503 "loading" while a start-up model loads, names it, then 200 with it ready', async () => {
  const { source, finish, started } = slowSource();
  const config = { ...resolveServeConfig({}, {}), port: 0 };
  const registry = new ModelRegistry([entry('big', true), entry('small')], source, { maxLoaded: 2, keepAliveMs: -1 });
  const starting = new Set(['big']);
  const { app } = buildApp(config, registry, pino({ level: 'silent' }), 'test', () => [...starting]);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  try {
    const loading = registry.preload(entry('big', true));
    await waitFor(() => started('big'));
    const during = await request(`${url}/health`);
    assert.equal(during.status, 503);
    assert.deepEqual(during.json, { status: 'loading', models: { ready: [], loading: ['big'] } });
    // vLLM's /ping says the same with no body, on GET and POST.
    for (const method of ['GET', 'POST']) {
      const ping = await request(`${url}/ping`, { method });
      assert.deepEqual([ping.status, ping.text], [503, ''], method);
    }

    finish('big');
    await loading;
    starting.delete('big');
    const after = await request(`${url}/health`);
    assert.equal(after.status, 200);
    assert.deepEqual(after.json, { status: 'ok', models: { ready: ['big'], loading: [] } });
    for (const method of ['GET', 'POST']) {
      const ping = await request(`${url}/ping`, { method });
      assert.deepEqual([ping.status, ping.text], [200, ''], method);
    }
  } finally {
    await app.close();
    await registry.shutdown();
  }
});

test('a request for a model still loading waits for it, and gets a 503 with Retry-After past the load timeout', async () => {
  const { source, finish, started } = slowSource();
  const registry = new ModelRegistry([entry('a')], source, { maxLoaded: 1, keepAliveMs: -1, loadTimeoutMs: 80 });
  const first = registry.acquire(entry('a'));
  await assert.rejects(first, (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 503);
    assert.equal(e.code, 'model_loading');
    assert.equal(e.headers['retry-after'], '5');
    assert.match(e.message, /model "a" is still loading after 0\.08 s/);
    return true;
  });
  assert.ok(started('a'));
  // The load goes on after the timeout; a request made while it runs receives the model when it is in.
  const second = registry.acquire(entry('a'));
  setTimeout(() => finish('a'), 20);
  const lease = await second;
  assert.equal(lease.resident.entry.name, 'a');
  lease.release();
  await registry.shutdown();
});

test('a start-up model loads with no time limit even when requests have one', async () => {
  const { source, finish } = slowSource();
  const registry = new ModelRegistry([entry('a', true)], source, { maxLoaded: 1, keepAliveMs: -1, loadTimeoutMs: 20 });
  const loading = registry.preload(entry('a', true));
  setTimeout(() => finish('a'), 80);
  assert.equal((await loading).entry.name, 'a');
  await registry.shutdown();
});

test('serve: a busy port is one line, before any model loads', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as { port: number }).port;
  const lines: string[] = [];
  try {
    const config = {
      ...resolveServeConfig({}, {}),
      port,
      models: [join(projectRoot, 'test/fixtures/models/tiny-llama')],
    };
    await assert.rejects(
      startServer(config, { log: (l) => lines.push(l) }, (l) => lines.push(l)),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(
          e.message,
          `127.0.0.1:${port} is already in use (another pagoda or ollama serve?); choose one with --port or PAGODA_HOST`,
        );
        return true;
      },
    );
    assert.deepEqual(lines, [], 'nothing was loaded or announced');
  } finally {
    blocker.close();
  }
});

test('serve: a host name DNS does not know is one line naming where it came from, before any model loads', async () => {
  const lines: string[] = [];
  const config = {
    ...resolveServeConfig({}, { PAGODA_HOST: 'nosuch.invalid:0' }),
    models: [join(projectRoot, 'test/fixtures/models/tiny-llama')],
  };
  await assert.rejects(
    startServer(config, { log: (l) => lines.push(l) }, (l) => lines.push(l)),
    (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /^PAGODA_HOST: "nosuch\.invalid" is not a known host name \((ENOTFOUND|EAI_AGAIN)\)$/);
      return true;
    },
  );
  assert.deepEqual(lines, [], 'nothing was loaded or announced');
});

test('serve: a PAGODA_LOG_LEVEL pino does not know is refused in one line, before the demo model is written', () => {
  const home = mkdtempSync(join(tmpdir(), 'pagoda-log-level-'));
  try {
    const r = pagodaSync(['serve', '--port', '0'], {
      env: { ...process.env, PAGODA_HOME: home, PAGODA_LOG_LEVEL: 'loud' },
    });
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      'error: PAGODA_LOG_LEVEL loud: expected one of fatal, error, warn, info, debug, trace, silent\n',
    );
    assert.equal(existsSync(join(home, 'demo')), false);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("serve MODEL (vLLM's form) is serve --model MODEL; both at once is one line", () => {
  const missing = join(tmpdir(), 'pagoda-no-such-model');
  const positional = pagodaSync(['serve', missing, '--port', '0']);
  assert.equal(positional.status, 1);
  assert.equal(positional.stderr, `error: ${missing}: no such model folder or .gguf file\n`);
  const both = pagodaSync(['serve', 'a', '--model', 'b']);
  assert.equal(both.status, 1);
  assert.equal(both.stderr, 'error: serve a: name the model once, as the argument or with --model, not both\n');
});

test('serve: listens first, then loads the start-up model; ready settles once it is in', async () => {
  const lines: string[] = [];
  const model = join(projectRoot, 'test/fixtures/models/tiny-llama');
  const config = { ...resolveServeConfig({}, {}), port: 0, models: [model] };
  const server = await startServer(config, { log: () => {} }, (l) => lines.push(l));
  try {
    // Engine lines ("tiny-llama: KV cache: …") interleave; the server's own come in this order.
    const own = () => lines.filter((l) => !l.startsWith('tiny-llama: '));
    assert.match(own()[0]!, /^pagoda .* listening on http:\/\/127\.0\.0\.1:\d+ \(loading tiny-llama\)$/);
    await server.ready;
    assert.match(own()[1]!, /^model tiny-llama \(.*\) ready in [\d.]+ s: backend cpu, context \d+ tokens$/);
    const health = await request(`${server.url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(health.json, { status: 'ok', models: { ready: ['tiny-llama'], loading: [] } });
  } finally {
    await server.shutdown();
  }
});

test('serve: a start-up model that fails to load rejects ready with its name and the reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-startup-'));
  try {
    writeFileSync(join(dir, 'config.json'), '{"architectures": ["LlamaForCausalLM"]}');
    const config = { ...resolveServeConfig({}, {}), port: 0, models: [dir] };
    const server = await startServer(config, { log: () => {} }, () => {});
    try {
      await assert.rejects(server.ready, /model "pagoda-startup-\w+" failed to load: .*config\.json: missing/);
    } finally {
      await server.shutdown();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('warmWeightFiles reads every weight file of a folder (and a single file) in full', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-warm-'));
  try {
    writeFileSync(join(dir, 'a.safetensors'), Buffer.alloc(40 * 2 ** 20 + 3, 1));
    writeFileSync(join(dir, 'b.gguf'), Buffer.alloc(5, 2));
    writeFileSync(join(dir, 'config.json'), '{}');
    assert.equal(await warmWeightFiles(dir), 40 * 2 ** 20 + 8);
    assert.equal(await warmWeightFiles(join(dir, 'b.gguf')), 5);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), 'condition never held');
}
