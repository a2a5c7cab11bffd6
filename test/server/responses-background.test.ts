import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import OpenAI from 'openai';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import { fakeTemplate } from './fake-engine.ts';
import { request } from './harness.ts';

const message = (r: { json: Record<string, unknown> }) => (r.json.error as { message: string }).message;

import { closeScriptedServers, serveScript } from './scripted-model.ts';

after(closeScriptedServers);

/** A scripted model's server whose tokens come `tokenDelayMs` apart, and an OpenAI client of it. */
async function serve(script: string, tokenDelayMs = 0) {
  const served = await serveScript(script, fakeTemplate, { tokenDelayMs });
  return { ...served, openai: new OpenAI({ baseURL: `${served.url}/v1`, apiKey: 'unused', maxRetries: 0 }) };
}

/** Polls a background response until it leaves queued and in_progress. */
async function settled(openai: OpenAI, id: string) {
  for (;;) {
    const r = await openai.responses.retrieve(id);
    if (r.status !== 'queued' && r.status !== 'in_progress') return r;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('background: answered at once as queued, then polled to its completed response', async () => {
  const { openai } = await serve('Hello there.', 2);
  const queued = await openai.responses.create({ model: 'm', input: 'Hi', background: true });
  assert.equal(queued.status, 'queued');
  assert.equal(queued.background, true);
  assert.deepEqual(queued.output, []);
  const done = await settled(openai, queued.id);
  assert.equal(done.status, 'completed');
  assert.equal(done.output_text, 'Hello there.');
  assert.equal(done.usage?.output_tokens, 12);
  const items = await openai.responses.inputItems.list(queued.id);
  assert.deepEqual(
    items.data.map((i) => i.type),
    ['message'],
  );
});

test('cancel: a running background response stops, its KV blocks are freed, and cancel again answers the same', async () => {
  const { openai, engine, url } = await serve('x'.repeat(20_000), 2);
  const queued = await openai.responses.create({ model: 'm', input: 'Hi', background: true });
  // While it runs, a response may not go on from it, and GET shows its output so far.
  while ((await openai.responses.retrieve(queued.id)).output.length === 0) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const chained = await request(`${url}/v1/responses`, {
    body: { model: 'm', input: 'Go on', previous_response_id: queued.id },
  });
  assert.equal(chained.status, 400);
  assert.match(message(chained), /is still in progress/);
  const cancelled = await openai.responses.cancel(queued.id);
  assert.equal(cancelled.status, 'cancelled');
  assert.equal(cancelled.error, null);
  assert.ok(cancelled.output_text.length > 0 && cancelled.output_text.length < 20_000, 'cut where it was');
  assert.deepEqual(await openai.responses.retrieve(queued.id), cancelled);
  assert.deepEqual(await openai.responses.cancel(queued.id), cancelled);
  const s = engine().stats();
  assert.equal(s.freeBlocks, s.totalBlocks, 'the cancelled generation holds no KV blocks');
  assert.equal(s.running, 0);
});

test('background and stream: the client goes away mid-stream, the run goes on, GET ?stream=true picks it up', async () => {
  const script = 'A background story, streamed in two sittings.';
  const { openai } = await serve(script, 3);
  const first: ResponseStreamEvent[] = [];
  const stream = await openai.responses.create({ model: 'm', input: 'Hi', background: true, stream: true });
  for await (const e of stream) {
    first.push(e);
    if (e.type === 'response.output_text.delta' && first.length >= 8) break;
  }
  const created = first[0]!;
  assert.ok(created.type === 'response.created');
  assert.equal(created.response.status, 'queued');
  const id = created.response.id;
  const last = first.at(-1)!.sequence_number;
  // The rest, past the last event seen; then the whole again from the start once it has ended.
  const rest: ResponseStreamEvent[] = [];
  for await (const e of await openai.responses.retrieve(id, { stream: true, starting_after: last })) rest.push(e);
  const seen = [...first, ...rest];
  assert.deepEqual(
    seen.map((e) => e.sequence_number),
    seen.map((_, i) => i),
    'no event lost or repeated',
  );
  const text = seen.map((e) => (e.type === 'response.output_text.delta' ? e.delta : '')).join('');
  assert.equal(text, script);
  const end = rest.at(-1)!;
  assert.ok(end.type === 'response.completed');
  const again: ResponseStreamEvent[] = [];
  for await (const e of await openai.responses.retrieve(id, { stream: true })) again.push(e);
  assert.deepEqual(again, seen);
  assert.equal((await openai.responses.retrieve(id)).output_text, script);
});

test('refusals: background without store, streaming again what was not streamed, cancelling a synchronous response', async () => {
  const { url, openai } = await serve('Fine.');
  const unstored = await request(`${url}/v1/responses`, {
    body: { model: 'm', input: 'Hi', background: true, store: false },
  });
  assert.equal(unstored.status, 400);
  assert.equal(message(unstored), 'background: a background response is stored, so store cannot be false');
  const plain = await openai.responses.create({ model: 'm', input: 'Hi' });
  const again = await request(`${url}/v1/responses/${plain.id}?stream=true`);
  assert.equal(again.status, 400);
  assert.match(message(again), /^stream: only a background response created with stream: true/);
  const cancel = await request(`${url}/v1/responses/${plain.id}/cancel`, { method: 'POST' });
  assert.equal(cancel.status, 400);
  assert.equal(message(cancel), 'Cannot cancel a synchronous response.');
  assert.equal((await request(`${url}/v1/responses/resp_nope/cancel`, { method: 'POST' })).status, 404);
});
