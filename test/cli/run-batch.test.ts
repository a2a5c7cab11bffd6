import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BatchOutputLine } from '../../src/server/batch-file.ts';
import { pagodaAsync, pagodaSync } from '../helpers/cli.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const model = modelFixture('tiny-llama');
const lines = [
  {
    custom_id: 'greedy',
    method: 'POST',
    url: '/v1/completions',
    body: { model: 'tiny', prompt: 'Once', max_tokens: 6, temperature: 0, ignore_eos: true },
  },
  {
    custom_id: 'chat',
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 },
  },
  { custom_id: 'other-model', method: 'POST', url: '/v1/completions', body: { model: 'absent', prompt: 'x' } },
  {
    custom_id: 'greedy-again',
    method: 'POST',
    url: '/v1/completions',
    body: { model: 'tiny', prompt: 'Once', max_tokens: 6, temperature: 0, ignore_eos: true },
  },
];
const jsonl = lines.map((l) => JSON.stringify(l)).join('\n');

function checkAnswers(text: string) {
  const out = text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as BatchOutputLine);
  assert.deepEqual(
    out.map((o) => [o.custom_id, o.response?.status_code]),
    [
      ['greedy', 200],
      ['chat', 200],
      ['other-model', 404],
      ['greedy-again', 200],
    ],
  );
  interface Answer {
    object: string;
    usage: { completion_tokens: number };
    choices: { text?: string; message?: { role: string } }[];
    error?: { code: string };
  }
  const body = (i: number) => out[i]!.response!.body as Answer;
  assert.equal(body(0).object, 'text_completion');
  assert.equal(body(0).usage.completion_tokens, 6);
  assert.equal(body(0).choices[0]!.text, body(3).choices[0]!.text, 'greedy answers agree however the batch ran them');
  assert.equal(body(1).choices[0]!.message!.role, 'assistant');
  assert.equal(body(2).error!.code, 'model_not_found');
}

test('run-batch: a file of requests in, one answer line each out, in order', { skip: model.skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-batch-'));
  try {
    writeFileSync(join(dir, 'in.jsonl'), `${jsonl}\n\n`);
    const args = ['run-batch', '-i', join(dir, 'in.jsonl'), '-o', join(dir, 'out.jsonl')];
    const { stderr } = await pagodaAsync([...args, '--model', model.path, '--served-model-name', 'tiny']);
    checkAnswers(readFileSync(join(dir, 'out.jsonl'), 'utf8'));
    assert.match(stderr, /4 request\(s\): 3 succeeded, 1 failed; wrote .*out\.jsonl in [\d.]+ s/);
    assert.doesNotMatch(stderr, /"msg":"request"/, 'no log line per request');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run-batch: input read from a URL with GET, output sent to one with PUT', { skip: model.skip }, async () => {
  let uploaded = '';
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/in.jsonl') return res.end(jsonl);
    if (req.method === 'PUT' && req.url === '/out.jsonl') {
      req.setEncoding('utf8').on('data', (c: string) => (uploaded += c));
      req.on('end', () => res.end());
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  try {
    const base = `http://127.0.0.1:${port}`;
    const args = ['run-batch', '-i', `${base}/in.jsonl`, '-o', `${base}/out.jsonl`, '--model', model.path];
    await pagodaAsync([...args, '--served-model-name', 'tiny']);
    checkAnswers(uploaded);
    // Asynchronously: this process's server answers it.
    await assert.rejects(
      pagodaAsync(['run-batch', '-i', `${base}/absent.jsonl`, '-o', '/dev/null', '--model', model.path]),
      (err: { code: number; stderr: string }) =>
        err.code === 1 && err.stderr.trim() === `error: --input-file ${base}/absent.jsonl: HTTP 404`,
    );
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('run-batch: an input or output file that cannot be opened is one line, before any model loads', () => {
  const r = pagodaSync(['run-batch', '-i', '/nonexistent/in.jsonl', '-o', '/dev/null']);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim(), 'error: --input-file /nonexistent/in.jsonl: no such file');
  const w = pagodaSync(['run-batch', '-i', '/dev/null', '-o', '/nonexistent/out.jsonl']);
  assert.equal(w.status, 1);
  assert.match(w.stderr.trim(), /^error: --output-file \/nonexistent\/out\.jsonl: ENOENT: no such file or directory/);
  assert.doesNotMatch(w.stderr, /ready in/, 'the model was not loaded');
});

test('run-batch: a model that fails to load leaves no output file behind, and an existing one as it was', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-batch-'));
  try {
    writeFileSync(join(dir, 'in.jsonl'), jsonl);
    const run = (out: string) =>
      pagodaSync(['run-batch', '-i', join(dir, 'in.jsonl'), '-o', out, '--model', join(dir, 'absent-model')]);
    assert.equal(run(join(dir, 'new.jsonl')).status, 1);
    assert.ok(!existsSync(join(dir, 'new.jsonl')), 'the output the run created is removed');
    writeFileSync(join(dir, 'old.jsonl'), 'earlier answers\n');
    assert.equal(run(join(dir, 'old.jsonl')).status, 1);
    assert.equal(readFileSync(join(dir, 'old.jsonl'), 'utf8'), 'earlier answers\n', 'not truncated');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run-batch: an output that fails mid-run (a full disk) is one line naming it', {
  skip: model.skip ?? (!existsSync('/dev/full') && 'no /dev/full here'),
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-batch-'));
  try {
    writeFileSync(join(dir, 'in.jsonl'), jsonl);
    const args = ['run-batch', '-i', join(dir, 'in.jsonl'), '-o', '/dev/full', '--model', model.path];
    await assert.rejects(pagodaAsync(args), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr.trim().split('\n').at(-1)!, /^error: --output-file \/dev\/full: ENOSPC: no space left/);
      assert.doesNotMatch(err.stderr, /\n\s+at /, 'no stack trace');
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
