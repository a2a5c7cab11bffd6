import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { localChat } from '../../src/cli/chat/backends.ts';
import { loadEngine } from '../../src/engine/load.ts';
import { createModel } from '../../src/store/create.ts';
import { parseModelfile } from '../../src/store/modelfile.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { addToHubCache, readModelFolder } from '../helpers/hf-cache.ts';
import { inTerminal } from '../helpers/terminal.ts';

let root = '';
let env: Record<string, string> = {};
const CHATML =
  '{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n';

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((done) => probe.close(done));
  return port;
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-chat-'));
  env = { PAGODA_MODELS: join(root, 'models'), HF_HUB_CACHE: join(root, 'hf') };
  addToHubCache(
    env.HF_HUB_CACHE!,
    'pagoda-test/tiny-qwen2',
    readModelFolder(join(projectRoot, 'test/fixtures/models/tiny-qwen2')),
  );
  writeFileSync(join(root, 'Modelfile'), '');
});
after(() => rmSync(root, { recursive: true, force: true }));

test('interactive pagoda run in a pseudo-terminal answers in-process, keeps going, exits on /bye', async () => {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  let expected: string[];
  try {
    await createModel(
      'chat',
      parseModelfile(`FROM pagoda-test/tiny-qwen2\nSYSTEM Be brief.\nTEMPLATE """${CHATML}"""`),
      {
        env,
      },
    );
    // The same conversation through the same engine path, outside the terminal, is the expected answer.
    const loaded = loadEngine('chat', { log: () => {} });
    const chat = localChat(loaded, 'chat');
    const settings = { params: { temperature: 0, maxTokens: 6 }, raw: false };
    const answer = async (messages: { role: string; content: string }[]) => {
      let text = '';
      for await (const d of chat.stream(messages, settings, new AbortController().signal)) {
        if (typeof d === 'string') text += d;
      }
      return text;
    };
    const first = await answer([{ role: 'user', content: 'Hello there' }]);
    const second = await answer([
      { role: 'user', content: 'Hello there' },
      { role: 'assistant', content: first },
      { role: 'user', content: 'And again' },
    ]);
    await loaded.engine.shutdown(true);
    expected = [first, second];
  } finally {
    process.env = saved;
  }
  assert.ok(expected[0]!.length > 0);
  const port = await closedPort();
  const result = await inTerminal(
    [
      ['expect', '>>> $', 60],
      ['send', 'Hello there\r'],
      ['expect', '\n\n>>> $', 30],
      ['send', '/?\r'],
      ['expect', '/bye.*>>> $', 10],
      ['send', 'And again\r'],
      ['expect', '\n\n>>> $', 30],
      ['send', '/bye\r'],
    ],
    ['run', 'chat', '--max-tokens', '6'],
    { ...env, PAGODA_HOST: `127.0.0.1:${port}` },
  );
  assert.ok(result.ok, `${result.error}\n${result.output}`);
  assert.equal(result.code, 0, result.output);
  assert.ok(result.output.includes(`Hello there\n${expected[0]}\n\n>>> `), result.output);
  assert.ok(result.output.includes(`And again\n${expected[1]}\n\n>>> `), result.output);
});

test('interactive pagoda run uses a running server; Ctrl-C stops the answer, not the program', async () => {
  const chats: {
    body: { model: string; messages: { role: string; content: string }[]; options: Record<string, unknown> };
    closed: boolean;
  }[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let body = '';
    for await (const c of req) body += c;
    if (req.url === '/api/version') return void res.end('{"version":"0.0.0"}');
    if (req.url === '/api/show')
      return void res.end(JSON.stringify({ parameters: 'temperature 0.7\nstop "<|im_end|>"' }));
    if (req.url !== '/api/chat') return void res.writeHead(404).end();
    const chat = { body: JSON.parse(body), closed: false };
    chats.push(chat);
    res.on('close', () => (chat.closed = true));
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    if (chats.length === 1) {
      // An answer that never ends on its own: one word every 30 ms.
      const timer = setInterval(
        () => res.write(`${JSON.stringify({ message: { role: 'assistant', content: 'la ' }, done: false })}\n`),
        30,
      );
      res.on('close', () => clearInterval(timer));
      return;
    }
    res.write(`${JSON.stringify({ message: { role: 'assistant', content: 'second answer' }, done: false })}\n`);
    res.end(`${JSON.stringify({ message: { role: 'assistant', content: '' }, done: true })}\n`);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  try {
    const port = (server.address() as AddressInfo).port;
    const result = await inTerminal(
      [
        ['expect', '>>> $', 60],
        ['send', 'Sing\r'],
        ['expect', 'la la la ', 10],
        ['send', '\x03'],
        ['expect', '\\^C\n\n>>> $', 10],
        ['send', '\x03'],
        ['expect', 'Use Ctrl \\+ d or /bye to exit.\n>>> $', 10],
        ['send', 'Next\r'],
        ['expect', 'second answer\n\n>>> $', 10],
        ['send', '/bye\r'],
      ],
      ['run', 'remote-model'],
      { ...env, PAGODA_HOST: `http://127.0.0.1:${port}` },
    );
    assert.ok(result.ok, `${result.error}\n${result.output}`);
    assert.equal(result.code, 0, result.output);
    assert.equal(chats.length, 2);
    assert.equal(chats[0]!.closed, true, 'the stopped answer closed its request');
    assert.equal(chats[0]!.body.model, 'remote-model');
    assert.deepEqual(
      chats[0]!.body.options,
      {},
      'no flags given, a model temperature: the server applies its defaults',
    );
    // The stopped answer stays in the history as far as it got.
    const history = chats[1]!.body.messages;
    assert.deepEqual(
      history.map((m) => m.role),
      ['user', 'assistant', 'user'],
    );
    assert.match(history[1]!.content, /^(la )+$/);
    assert.equal(history[2]!.content, 'Next');
  } finally {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
});
