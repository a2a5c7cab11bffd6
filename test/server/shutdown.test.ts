import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { projectRoot } from '../helpers/fixtures.ts';
import { MODEL_DIR } from './served.ts';

interface Child {
  proc: ChildProcess;
  url: string;
  out: () => string;
  exit: Promise<number | null>;
}

/** Spawns `pagoda serve` on a free port and waits for its "listening on" line, then for its model to be ready. */
async function spawnServe(args: string[]): Promise<Child> {
  const proc = spawn(
    process.execPath,
    [join(projectRoot, 'bin', 'pagoda.mjs'), 'serve', '--model', MODEL_DIR, '--port', '0', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PAGODA_LOG_LEVEL: 'warn' },
    },
  );
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" line:\n${out}`)), 30_000);
    proc.stdout!.on('data', () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m && /\nmodel \S+ \(.*\) ready in/.test(out)) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', () => reject(new Error(`serve exited early:\n${out}`)));
  });
  return { proc, url, out: () => out, exit };
}

/** Streams a request; resolves `first` at the first chunk and `done` with the whole body when it ends. */
function streamRequest(url: string, body: unknown) {
  let onFirst!: () => void;
  const first = new Promise<void>((r) => (onFirst = r));
  const done = new Promise<string>((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
          onFirst();
        });
        res.on('end', () => resolve(text));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
  return { first, done };
}

test('SIGTERM: stops accepting, lets in-flight streams finish, exits 0', async () => {
  const child = await spawnServe([]);
  // Startup says where it listens, then the model, the backend and the KV cache size.
  assert.match(child.out(), /tiny-llama: KV cache: \d+ blocks of 16 tokens \([\d.]+ MiB\)/);
  assert.match(child.out(), /model tiny-llama \(.*tiny-llama\) ready in [\d.]+ s: backend cpu, context 512 tokens/);
  const streams = [0, 1, 2].map((i) =>
    streamRequest(`${child.url}/v1/completions`, {
      model: 'tiny-llama',
      prompt: `story ${i}`,
      max_tokens: 300,
      ignore_eos: true,
      stream: true,
    }),
  );
  await Promise.all(streams.map((s) => s.first));
  child.proc.kill('SIGTERM');
  const bodies = await Promise.all(streams.map((s) => s.done));
  for (const body of bodies) {
    assert.ok(body.endsWith('data: [DONE]\n\n'), 'stream completed');
    const events = body.split('\n\n').filter((e) => e.startsWith('data: {'));
    const text = events.map((e) => JSON.parse(e.slice(6)).choices[0]?.finish_reason).filter(Boolean);
    assert.deepEqual(text, ['length'], 'ran to its limit');
  }
  assert.equal(await child.exit, 0);
  assert.match(child.out(), /shutting down: 3 request\(s\) in flight/);
  await assert.rejects(fetch(`${child.url}/health`), 'no longer accepting');
});

test('SIGTERM past the grace period aborts what is left and still exits 0', async () => {
  const child = await spawnServe(['--shutdown-grace', '0']);
  const s = streamRequest(`${child.url}/v1/completions`, {
    model: 'tiny-llama',
    prompt: 'x',
    max_tokens: 500,
    ignore_eos: true,
    stream: true,
  });
  await s.first;
  child.proc.kill('SIGTERM');
  const body = await s.done;
  assert.equal(await child.exit, 0);
  const finishes = body
    .split('\n\n')
    .filter((e) => e.startsWith('data: {'))
    .map((e) => JSON.parse(e.slice(6)).choices[0]?.finish_reason)
    .filter(Boolean);
  assert.deepEqual(finishes, ['abort']);
  assert.match(child.out(), /aborting 1 request/);
});
