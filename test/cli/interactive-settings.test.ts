import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadEngine } from '../../src/engine/load.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { readModelFolder } from '../helpers/hf-cache.ts';
import { inTerminal } from '../helpers/terminal.ts';

let root = '';
/** tiny-qwen2 without its chat template. */
let plain = '';

before(() => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-chat-settings-'));
  plain = join(root, 'plain-model');
  const files = readModelFolder(join(projectRoot, 'test/fixtures/models/tiny-qwen2'));
  delete files['chat_template.jinja'];
  mkdirSync(plain);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(plain, name), content);
});
after(() => rmSync(root, { recursive: true, force: true }));

test('the chat on a model without a chat template says so once and continues the plain text; /set parameter applies', async () => {
  const loaded = loadEngine(plain, { log: () => {} });
  assert.equal(loaded.chatTemplate, null);
  const continuation = async (text: string, maxTokens: number) => {
    let out = '';
    const prompt = loaded.tokenizer.encode(text);
    for await (const o of loaded.engine.generate({ prompt, params: { temperature: 0, maxTokens, ignoreEos: true } })) {
      for (const d of o.outputs) out += d.text;
    }
    return out;
  };
  const first = await continuation('Hello', 4);
  const second = await continuation(`Hello${first}Again`, 2);
  await loaded.engine.shutdown(true);
  assert.ok(first.length > 0 && second.length > 0);

  const note = 'This model has no chat template: each answer continues the conversation as plain text.';
  const result = await inTerminal(
    [
      ['expect', `${note}\n>>> $`, 60],
      ['send', 'Hello\r'],
      ['expect', '\n\n>>> $', 30],
      ['send', '/set parameter num_predict 2\r'],
      ['expect', "Set parameter 'num_predict' to '2'\n>>> $", 10],
      ['send', '/set parameter temperature -1\r'],
      ['expect', "Couldn't set parameter: .*temperature.*\n>>> $", 10],
      ['send', '/set noraw\r'],
      ['expect', 'no chat template: the conversation is still continued as plain text.\n>>> $', 10],
      ['send', 'Again\r'],
      ['expect', '\n\n>>> $', 30],
      ['send', '/bye\r'],
    ],
    ['run', plain, '--max-tokens', '4', '--ignore-eos'],
    { PAGODA_HOME: root },
  );
  assert.ok(result.ok, `${result.error}\n${result.output}`);
  assert.equal(result.code, 0, result.output);
  assert.equal(result.output.split(note).length, 2, 'the note is written once');
  assert.ok(result.output.includes(`Hello\n${first}\n\n>>> `), result.output);
  assert.ok(result.output.includes(`Again\n${second}\n\n>>> `), result.output);
});

test('the chat takes a """ multi-line message as one, shows the model, and prints timings after /set verbose', async () => {
  const result = await inTerminal(
    [
      ['expect', '>>> $', 60],
      ['send', '"""Hello\r'],
      ['expect', '\\.\\.\\. $', 10],
      ['send', 'there"""\r'],
      ['expect', '\n\n>>> $', 30],
      ['send', '/show system\r'],
      ['expect', 'No system was specified for this model.\n>>> $', 10],
      ['send', '/set verbose\r'],
      ['expect', 'Set verbose mode.\n>>> $', 10],
      ['send', 'Again\r'],
      ['expect', 'eval count: +\\d+ token\\(s\\)\n.*\n.*\n\n>>> $', 30],
      ['send', '/bye\r'],
    ],
    ['run', plain, '--max-tokens', '4', '--ignore-eos'],
    { PAGODA_HOME: root },
  );
  assert.ok(result.ok, `${result.error}\n${result.output}`);
  assert.equal(result.code, 0, result.output);
  assert.equal(result.output.match(/total duration:/g)?.length, 1, 'timings only once verbose');
});

interface Recorded {
  path: string;
  body: { model: string; options?: Record<string, unknown>; messages?: unknown[]; prompt?: string; raw?: boolean };
}

/** An Ollama-style server whose /api/show gives `templates[model]` and which answers "answer N" to each request. */
async function fakeServer(
  templates: Record<string, string>,
): Promise<{ server: Server; url: string; seen: Recorded[] }> {
  const seen: Recorded[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let text = '';
    for await (const c of req) text += c;
    const body = text ? JSON.parse(text) : {};
    if (req.url === '/api/version') return void res.end('{"version":"0.0.0"}');
    if (req.url === '/api/show') return void res.end(JSON.stringify({ template: templates[body.model] }));
    if (req.url !== '/api/chat' && req.url !== '/api/generate') return void res.writeHead(404).end();
    seen.push({ path: req.url, body });
    const piece = (content: string, done: boolean) =>
      `${JSON.stringify(req.url === '/api/chat' ? { message: { role: 'assistant', content }, done } : { response: content, done })}\n`;
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(piece(`answer ${seen.length}`, false));
    res.end(piece('', true));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

test('the chat through a server sends the given settings (greedy where the model sets no temperature); /set system and /set raw change the next turns', async () => {
  const { server, url, seen } = await fakeServer({ 'chat-model': '{{ .Prompt }}', 'plain-model': '' });
  try {
    const chat = await inTerminal(
      [
        ['expect', '>>> $', 60],
        ['send', 'Hi\r'],
        ['expect', 'answer 1\n\n>>> $', 10],
        ['send', '/set parameter top_k 5\r'],
        ['expect', "Set parameter 'top_k' to '5'\n>>> $", 10],
        ['send', '/set system Be brief.\r'],
        ['expect', 'Set system message.\n>>> $', 10],
        ['send', 'Again\r'],
        ['expect', 'answer 2\n\n>>> $', 10],
        ['send', '/set raw\r'],
        ['expect', 'Set raw mode.*\n>>> $', 10],
        ['send', 'Raw\r'],
        ['expect', 'answer 3\n\n>>> $', 10],
        ['send', '/bye\r'],
      ],
      ['run', 'chat-model', '--temperature', '0.3'],
      { PAGODA_HOST: url, PAGODA_HOME: root },
    );
    assert.ok(chat.ok, `${chat.error}\n${chat.output}`);
    assert.ok(!chat.output.includes('no chat template'), chat.output);
    assert.deepEqual(seen, [
      {
        path: '/api/chat',
        body: {
          model: 'chat-model',
          messages: [{ role: 'user', content: 'Hi' }],
          stream: true,
          options: { temperature: 0.3 },
        },
      },
      {
        path: '/api/chat',
        body: {
          model: 'chat-model',
          messages: [
            { role: 'system', content: 'Be brief.' },
            { role: 'user', content: 'Hi' },
            { role: 'assistant', content: 'answer 1' },
            { role: 'user', content: 'Again' },
          ],
          stream: true,
          options: { temperature: 0.3, top_k: 5 },
        },
      },
      {
        path: '/api/generate',
        body: {
          model: 'chat-model',
          prompt: 'Hianswer 1Againanswer 2Raw',
          raw: true,
          stream: true,
          options: { temperature: 0.3, top_k: 5 },
        },
      },
    ]);

    seen.length = 0;
    const note = 'This model has no chat template: each answer continues the conversation as plain text.';
    const plainChat = await inTerminal(
      [
        ['expect', `${note}\n>>> $`, 60],
        ['send', 'Hi\r'],
        ['expect', 'answer 1\n\n>>> $', 10],
        ['send', '/bye\r'],
      ],
      ['run', 'plain-model'],
      { PAGODA_HOST: url, PAGODA_HOME: root },
    );
    assert.ok(plainChat.ok, `${plainChat.error}\n${plainChat.output}`);
    // The model sets no temperature: pagoda's greedy default, as in-process.
    const options = { temperature: 0 };
    assert.deepEqual(seen, [
      { path: '/api/generate', body: { model: 'plain-model', prompt: 'Hi', raw: true, stream: true, options } },
    ]);
  } finally {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
});
