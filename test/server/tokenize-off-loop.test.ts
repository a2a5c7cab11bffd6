import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, post, request } from './harness.ts';
import { type ServedModel, startServed } from './served.ts';

// [0] opened, [1] texts the tokenizer worker received (see latched-tokenizer-worker.mjs).
const latch = new Int32Array(new SharedArrayBuffer(8));
const open = () => {
  Atomics.store(latch, 0, 1);
  Atomics.notify(latch, 0);
};

let server: ServedModel;
before(async () => {
  server = await startServed({}, undefined, {
    tokenizerWorker: {
      entry: new URL('../helpers/latched-tokenizer-worker.mjs', import.meta.url),
      data: { latch: latch.buffer },
    },
  });
});
after(async () => {
  open();
  await server.close();
});

const complete = (prompt: string, extra: Record<string, unknown> = {}) =>
  post(`${server.url}/v1/completions`, { model: server.model, prompt, max_tokens: 3, ...extra });

test('while the tokenizer worker holds four long prompts, /health and another stream are served', async () => {
  // 4800 characters: long enough for the worker, about 300 of tiny-llama's tokens ('*' x 16 is one token).
  const long = Array.from({ length: 4 }, (_, i) => `${'*'.repeat(4800)} ${i}`);
  const settled: boolean[] = [false, false, false, false];
  const pending = long.map((p, i) =>
    complete(p).then((r) => {
      settled[i] = true;
      return r;
    }),
  );
  await eventually(() => Atomics.load(latch, 1) === 1, 10_000, 'the worker to receive the first long prompt');

  const health = await request(`${server.url}/health`);
  assert.deepEqual(health.json, { status: 'ok', models: { ready: ['tiny-llama'], loading: [] } });
  const stream = await complete('Once upon a time', { stream: true, max_tokens: 4, temperature: 0, ignore_eos: true });
  assert.equal(stream.status, 200);
  const chunks = stream.text.split('\n\n').filter((e) => e.startsWith('data: {'));
  assert.ok(chunks.length >= 2 && stream.text.includes('data: [DONE]'), stream.text);
  // A text over the bound is refused without reaching the (held) worker.
  const over = await complete('x'.repeat(9000));
  assert.equal(over.status, 400);
  assert.match((over.json.error as { message: string }).message, /9000 characters, more than the 8176/);

  assert.deepEqual(settled, [false, false, false, false], 'the long prompts wait on the worker');
  assert.equal(Atomics.load(latch, 1), 1, 'the worker holds one text; the others are queued behind it');
  open();
  for (const r of await Promise.all(pending)) {
    assert.equal(r.status, 200, r.text);
    assert.ok((r.json.usage as { prompt_tokens: number }).prompt_tokens > 256);
  }
  assert.equal(Atomics.load(latch, 1), 4);
});
