import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AnswerPrinter } from '../../src/cli/chat/answer-printer.ts';
import { localChat } from '../../src/cli/chat/backends.ts';
import type { LoadedEngine } from '../../src/engine/load.ts';
import type { RequestOutput } from '../../src/engine/types.ts';
import type { TextTokenizer } from '../../src/loader/tokenizer.ts';
import { goPromptTemplate } from '../../src/store/model-prompt.ts';
import { pagodaSync } from '../helpers/cli.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { readModelFolder } from '../helpers/hf-cache.ts';
import { inTerminal } from '../helpers/terminal.ts';

const QWEN = join(projectRoot, 'test/fixtures/models/tiny-qwen2');
/** Qwen3's switch: enable_thinking opens the block in the prompt, false writes an empty one. */
const THINKING_TEMPLATE =
  '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n' +
  '{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n' +
  '{% elif enable_thinking %}<think>\n{% endif %}';

let root = '';
/** tiny-qwen2 with a thinking chat template. */
let thinker = '';

before(() => {
  root = mkdtempSync(join(tmpdir(), 'pagoda-run-flags-'));
  thinker = join(root, 'thinker');
  mkdirSync(thinker);
  const files = { ...readModelFolder(QWEN), 'chat_template.jinja': THINKING_TEMPLATE };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(thinker, name), content);
});
after(() => rmSync(root, { recursive: true, force: true }));

function pagoda(args: string[]) {
  return pagodaSync(args, { env: { ...process.env, PAGODA_HOME: root } });
}

const demo = ['--max-tokens', '4', '--kv-cache-memory', '8MiB'];

test('run --verbose prints the answer on stdout and its counts and timings on stderr', () => {
  const r = pagoda(['run', 'Hello there', '--verbose', ...demo]);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /duration|eval/);
  assert.match(r.stderr, /^total duration: +\S+\nload duration: +\S+\nprompt eval count: +\d+ token\(s\)\n/m);
  assert.match(r.stderr, /^eval count: +4 token\(s\)\n.*\neval rate: +\S+ tokens\/s\n$/m);
  const quiet = pagoda(['run', 'Hello there', ...demo]);
  assert.equal(quiet.stdout, r.stdout, 'the same answer');
  assert.doesNotMatch(quiet.stderr, /total duration/);
});

test('run --format json answers in JSON; another format is refused in one line', () => {
  const tinyLlama = join(projectRoot, 'test/fixtures/models/tiny-llama');
  const r = pagoda(['run', tinyLlama, 'Hi', '--format', 'json', '--max-tokens', '24', '--device', 'cpu']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.trimStart(), /^[{[]/, r.stdout);
  const bad = pagoda(['run', tinyLlama, 'Hi', '--format', 'yaml']);
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, 'error: --format yaml: expected "json"\n');
});

test('run --keepalive and --nowordwrap are accepted in-process; a bad duration or --think value is one line', () => {
  const r = pagoda(['run', 'Hello there', '--keepalive', '10m', '--nowordwrap', ...demo]);
  assert.equal(r.status, 0, r.stderr);
  for (const [flag, message] of [
    [['--keepalive', '5 minutes'], '--keepalive 5 minutes: expected a duration (e.g. 5m, 1h, 0, -1)'],
    [['--think=maybe'], '--think=maybe: expected true, false, high, medium or low'],
  ] as const) {
    const bad = pagoda(['run', 'Hello there', ...flag, ...demo]);
    assert.equal(bad.status, 1);
    assert.equal(bad.stderr, `error: ${message}\n`);
  }
});

test('run --think on a model whose template cannot think is refused as Ollama refuses it', () => {
  const r = pagoda(['run', QWEN, '--think', 'Hi', '--max-tokens', '2']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^error: "tiny-qwen2" does not support thinking\n$/m);
  // --think=false asks nothing of the template; --hidethinking alone hides what there is none of.
  for (const flag of ['--think=false', '--hidethinking']) {
    const ok = pagoda(['run', QWEN, flag, 'Hi', '--max-tokens', '2']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.doesNotMatch(ok.stdout, /Thinking/);
  }
});

test('run --think shows the thinking under "Thinking..."; --hidethinking shows none; --think=false closes the block', () => {
  const flags = ['--max-tokens', '6', '--ignore-eos', '--device', 'cpu'];
  // A bare --think takes no value: the prompt after it stays the prompt.
  const shown = pagoda(['run', thinker, '--think', 'Hi', ...flags]);
  assert.equal(shown.status, 0, shown.stderr);
  // The random model never closes the block the prompt opened: all it writes is thinking.
  assert.match(shown.stdout, /^Thinking\.\.\.\n.+\n$/s);
  const level = pagoda(['run', thinker, 'Hi', '--think=high', ...flags]);
  assert.equal(level.stdout, shown.stdout, 'a level turns thinking on');
  const hidden = pagoda(['run', thinker, '--think', '--hidethinking', 'Hi', ...flags]);
  assert.equal(hidden.status, 0, hidden.stderr);
  assert.equal(hidden.stdout, '\n');
  const hiddenAlone = pagoda(['run', thinker, '--hidethinking', 'Hi', ...flags]);
  assert.equal(hiddenAlone.stdout, '\n', '--hidethinking alone asks a thinking model to think, unseen');
  const off = pagoda(['run', thinker, '--think=false', 'Hi', ...flags]);
  const plain = pagoda(['run', thinker, 'Hi', ...flags]);
  assert.equal(off.status, 0, off.stderr);
  assert.doesNotMatch(off.stdout, /Thinking/);
  assert.notEqual(off.stdout, plain.stdout, 'the template got enable_thinking false');
  assert.doesNotMatch(plain.stdout, /^Thinking/, 'without the flag, as before');
});

/** A LoadedEngine whose engine writes `pieces` whatever the prompt, and whose template thinks. */
function scripted(pieces: string[]): LoadedEngine {
  const engine = {
    config: { maxModelLen: 512, samplingDefaults: {} },
    async *generate(): AsyncIterable<RequestOutput> {
      for (const text of pieces) yield { outputs: [{ text }], metrics: null } as unknown as RequestOutput;
    },
  };
  const template = goPromptTemplate('{{ if .Think }}T{{ end }}{{ .Prompt }}');
  return {
    engine,
    chatTemplate: template,
    tokenizer: { encode: () => [1, 2] } as unknown as TextTokenizer,
    modelName: 'thinker',
  } as unknown as LoadedEngine;
}

async function printed(pieces: string[], hideThinking: boolean, terminal = false, env = {}): Promise<string> {
  let out = '';
  const write = (text: string) => {
    out += text;
    return true;
  };
  const sink = { write, isTTY: terminal } as unknown as NodeJS.WritableStream;
  const printer = new AnswerPrinter(sink, hideThinking, env);
  const settings = { params: {}, raw: false, think: true as const };
  const chat = localChat(scripted(pieces), 'thinker');
  for await (const d of chat.stream([{ role: 'user', content: 'Hi' }], settings, new AbortController().signal)) {
    printer.push(d);
  }
  return out;
}

test('a thinking answer in-process prints as ollama run prints it: thinking, "...done thinking.", the answer', async () => {
  const pieces = ['<thi', 'nk>Let me', ' see.</think>', '\n\nThe ', 'answer.'];
  assert.equal(await printed(pieces, false), 'Thinking...\nLet me see.\n...done thinking.\n\nThe answer.');
  assert.equal(await printed(pieces, true), 'The answer.');
  const lineEnded = ['<think>Hmm.\n</think>', 'Yes.'];
  assert.equal(await printed(lineEnded, false), 'Thinking...\nHmm.\n...done thinking.\n\nYes.');
  // On a terminal the thinking is grey, its two markers bold grey; NO_COLOR turns that off.
  assert.equal(
    await printed(lineEnded, false, true),
    '\x1b[90;1mThinking...\x1b[0m\n\x1b[90mHmm.\n\x1b[0m\x1b[90;1m...done thinking.\x1b[0m\n\nYes.',
  );
  assert.equal(await printed(lineEnded, false, true, { NO_COLOR: '1' }), await printed(lineEnded, false));
});

interface Recorded {
  path: string;
  body: Record<string, unknown>;
}

/** An Ollama-style server: /api/show gives `capabilities`, /api/chat answers with thinking, then "the answer". */
async function thinkingServer(capabilities: string[]): Promise<{ server: Server; url: string; seen: Recorded[] }> {
  const seen: Recorded[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let text = '';
    for await (const c of req) text += c;
    const body = text ? JSON.parse(text) : {};
    if (req.url === '/api/version') return void res.end('{"version":"0.0.0"}');
    if (req.url === '/api/show') return void res.end(JSON.stringify({ template: '{{ .Prompt }}', capabilities }));
    seen.push({ path: req.url ?? '', body });
    const line = (message: Record<string, string>, done: boolean, extra = {}) =>
      `${JSON.stringify({ message: { role: 'assistant', content: '', ...message }, done, ...extra })}\n`;
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(line({ thinking: 'Pondering' }, false));
    res.write(line({ thinking: ' deeply.' }, false));
    res.write(line({ content: 'the answer' }, false));
    res.end(line({}, true, { eval_count: 3, eval_duration: 3e8 }));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

test('the chat through a server sends think and keep_alive, shows message.thinking, and starts verbose with --verbose', async () => {
  const { server, url, seen } = await thinkingServer(['completion', 'thinking']);
  try {
    const chat = await inTerminal(
      [
        ['expect', '>>> $', 60],
        ['send', 'Hi\r'],
        ['expect', 'eval rate: .*\n\n>>> $', 10],
        ['send', '/bye\r'],
      ],
      ['run', 'qwen3', '--think', '--keepalive', '10m', '--verbose'],
      { PAGODA_HOST: url, PAGODA_HOME: root },
    );
    assert.ok(chat.ok, `${chat.error}\n${chat.output}`);
    assert.ok(
      chat.output.includes(
        'Hi\n\x1b[90;1mThinking...\x1b[0m\n\x1b[90mPondering\x1b[0m\x1b[90m deeply.\x1b[0m\n' +
          '\x1b[90;1m...done thinking.\x1b[0m\n\nthe answer\n\ntotal duration:',
      ),
      chat.output,
    );
    assert.match(chat.output, /^eval count: +3 token\(s\)$/m);
    assert.deepEqual(seen, [
      {
        path: '/api/chat',
        body: {
          model: 'qwen3',
          messages: [{ role: 'user', content: 'Hi' }],
          stream: true,
          options: { temperature: 0 },
          think: true,
          keep_alive: 600,
        },
      },
    ]);

    seen.length = 0;
    const hidden = await inTerminal(
      [
        ['expect', '>>> $', 60],
        ['send', 'Hi\r'],
        ['expect', 'the answer\n\n>>> $', 10],
        ['send', '/bye\r'],
      ],
      ['run', 'qwen3', '--think=low', '--hidethinking'],
      { PAGODA_HOST: url, PAGODA_HOME: root },
    );
    assert.ok(hidden.ok, `${hidden.error}\n${hidden.output}`);
    assert.ok(!hidden.output.includes('Thinking'), hidden.output);
    assert.equal(seen[0]?.body.think, 'low');
  } finally {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
});

test('the chat through a server refuses --think for a model without the thinking capability', async () => {
  const { server, url } = await thinkingServer(['completion']);
  try {
    const chat = await inTerminal([['expect', 'does not support thinking', 60]], ['run', 'llama3', '--think'], {
      PAGODA_HOST: url,
      PAGODA_HOME: root,
    });
    assert.ok(chat.ok, `${chat.error}\n${chat.output}`);
    assert.match(chat.output, /^error: "llama3" does not support thinking$/m);
    assert.equal(chat.code, 1);
  } finally {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
});
