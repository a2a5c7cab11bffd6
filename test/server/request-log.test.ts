import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { FakeSource } from './fake-engine.ts';
import { capturedLog, eventually, request, startTestServer, type TestServer } from './harness.ts';

const { log, lines } = capturedLog('info');
let server: TestServer;
before(async () => {
  server = await startTestServer(new FakeSource(), [{ name: 'm', path: '/m', ref: 'm' }], {}, log);
});
after(() => server.close());

/** The request line of the latest request to `url`, once its response has closed. */
async function requestLine(url: string): Promise<Record<string, unknown>> {
  let line: Record<string, unknown> | undefined;
  await eventually(
    () => {
      line = lines.filter((l) => l.msg === 'request' && l.url === url).at(-1);
      return line !== undefined;
    },
    2000,
    `the log line of ${url}`,
  );
  lines.length = 0;
  return line!;
}

test('the request line of a generation names the model, token counts and finish reason', async () => {
  const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const r = await openai.completions.create({ model: 'm', prompt: 'hello', max_tokens: 5, n: 2 });
  const line = await requestLine('/v1/completions');
  assert.equal(line.status, 200);
  assert.equal(line.model, 'm');
  assert.equal(line.prompt_tokens, r.usage!.prompt_tokens);
  assert.equal(line.completion_tokens, 10);
  assert.equal(line.finish_reason, 'length');
  assert.equal(typeof line.ms, 'number');

  const ollama = new Ollama({ host: server.url });
  const streamed = await ollama.chat({
    model: 'm',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
    options: { num_predict: 40, stop: ['fox'] },
  });
  for await (const _ of streamed);
  const chat = await requestLine('/api/chat');
  assert.equal(chat.model, 'm');
  assert.equal(chat.finish_reason, 'stop');
  assert.ok((chat.completion_tokens as number) > 0 && (chat.completion_tokens as number) < 40);
});

test('other requests keep the short line', async () => {
  await request(`${server.url}/api/tags`);
  const line = await requestLine('/api/tags');
  assert.equal(line.status, 200);
  assert.equal(line.model, undefined);
  assert.equal(line.prompt_tokens, undefined);
});

test('a request that fails with a 500 logs an error line naming its method and URL', async () => {
  const failing = capturedLog('info');
  const source = new FakeSource();
  source.load = async () => {
    throw new Error('no weights here');
  };
  const broken = await startTestServer(source, [{ name: 'broken', path: '/b', ref: 'b' }], {}, failing.log);
  try {
    const r = await request(`${broken.url}/v1/completions`, { method: 'POST', body: { model: 'broken', prompt: 'x' } });
    assert.equal(r.status, 500);
    await eventually(() => failing.lines.some((l) => l.msg === 'request failed'), 2000, 'the error line');
    const line = failing.lines.find((l) => l.msg === 'request failed')!;
    assert.equal(line.level, 50);
    assert.equal(line.method, 'POST');
    assert.equal(line.url, '/v1/completions');
    assert.match(String((line.err as { message: string }).message), /failed to load: no weights here/);
  } finally {
    await broken.close();
  }
});

test('--disable-log-requests: no request lines, responses still counted', async () => {
  const quiet = capturedLog('info');
  const off = await startTestServer(
    new FakeSource(),
    [{ name: 'm', path: '/m', ref: 'm' }],
    { logRequests: false },
    quiet.log,
  );
  try {
    await request(`${off.url}/api/tags`);
    const metrics = (await request(`${off.url}/metrics`)).text;
    assert.match(metrics, /status="200"\} [1-9]/);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      quiet.lines.filter((l) => l.msg === 'request'),
      [],
    );
  } finally {
    await off.close();
  }
});
