import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { type ServedModel, startServed } from './served.ts';

let server: ServedModel;
let client: OpenAI;
before(async () => {
  server = await startServed();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(() => server.close());

const messages = [{ role: 'user' as const, content: 'Tell me a story.' }];

test('chat completion, not streamed: message, finish reason, usage', async () => {
  const r = await client.chat.completions.create({ model: server.model, messages, max_tokens: 8, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, server.model);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage?.completion_tokens, 8);
  assert.ok((r.usage?.prompt_tokens ?? 0) > 0);
  assert.equal(r.usage?.total_tokens, r.usage!.prompt_tokens + 8);
});

test('chat completion streamed equals the same request not streamed; usage chunk has choices: []', async () => {
  const whole = await client.chat.completions.create({ model: server.model, messages, max_tokens: 12, temperature: 0 });
  const stream = await client.chat.completions.create({
    model: server.model,
    messages,
    max_tokens: 12,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let role = '';
  let finish: string | null = null;
  let usageChunk: OpenAI.Completions.CompletionUsage | null = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.choices.length === 0) {
      usageChunk = chunk.usage ?? null;
      continue;
    }
    assert.equal(chunk.usage, null);
    const c = chunk.choices[0];
    if (c.delta.role) role = c.delta.role;
    text += c.delta.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.ok(chunks > 3);
  assert.equal(role, 'assistant');
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, 'length');
  assert.deepEqual(usageChunk, whole.usage);
});

test('completions, streamed and not, agree', async () => {
  const r = await client.completions.create({
    model: server.model,
    prompt: 'Once upon a time',
    max_tokens: 10,
    temperature: 0,
  });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage?.completion_tokens, 10);
  const stream = await client.completions.create({
    model: server.model,
    prompt: 'Once upon a time',
    max_tokens: 10,
    temperature: 0,
    stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);
});

test('a stop string ends the text before it and is not emitted (unless include_stop_str_in_output)', async () => {
  const base = await client.completions.create({
    model: server.model,
    prompt: 'Once upon a time',
    max_tokens: 24,
    temperature: 0,
  });
  const full = base.choices[0].text;
  // A stop string taken from the middle of the greedy continuation must cut it right there.
  const stop = full.slice(10, 13);
  const expected = full.slice(0, full.indexOf(stop));
  const r = await client.completions.create({
    model: server.model,
    prompt: 'Once upon a time',
    max_tokens: 24,
    temperature: 0,
    stop: [stop],
  });
  assert.equal(r.choices[0].text, expected);
  assert.equal(r.choices[0].finish_reason, 'stop');
  // vLLM's include_stop_str_in_output keeps it, streamed and not.
  const keep = { model: server.model, prompt: 'Once upon a time', max_tokens: 24, temperature: 0, stop: [stop] };
  const kept = await client.completions.create({ ...keep, ...({ include_stop_str_in_output: true } as object) });
  assert.equal(kept.choices[0].text, expected + stop);
  let keptStreamed = '';
  const keptStream = await client.completions.create({
    ...keep,
    stream: true,
    ...({ include_stop_str_in_output: true } as object),
  });
  for await (const chunk of keptStream) keptStreamed += chunk.choices[0]?.text ?? '';
  assert.equal(keptStreamed, expected + stop);
  const stream = await client.chat.completions.create({
    model: server.model,
    messages,
    max_tokens: 24,
    temperature: 0,
    stream: true,
    stop,
  });
  let text = '';
  let finish = '';
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.ok(!text.includes(stop));
});

test('completions without max_tokens answer 16 tokens, as OpenAI and vLLM do; chat runs on', async () => {
  const r = await client.completions.create({ model: server.model, prompt: 'a', ...({ ignore_eos: true } as object) });
  assert.equal(r.usage?.completion_tokens, 16);
  assert.equal(r.choices[0].finish_reason, 'length');
  const chat = await client.chat.completions.create({
    model: server.model,
    messages,
    ...({ ignore_eos: true } as object),
  });
  assert.equal(chat.choices[0].finish_reason, 'length');
  assert.ok(chat.usage!.completion_tokens > 16, 'chat runs to the end of the context');
});

test('n = 2 returns two choices, streamed and not', async () => {
  const r = await client.chat.completions.create({
    model: server.model,
    messages,
    max_tokens: 6,
    n: 2,
    temperature: 1,
    seed: 3,
  });
  assert.deepEqual(
    r.choices.map((c) => c.index),
    [0, 1],
  );
  assert.equal(r.usage?.completion_tokens, 12);
  const stream = await client.completions.create({
    model: server.model,
    prompt: 'Hi',
    max_tokens: 6,
    n: 2,
    temperature: 1,
    stream: true,
  });
  const texts = ['', ''];
  const finished = [false, false];
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      texts[c.index] += c.text;
      if (c.finish_reason) finished[c.index] = true;
    }
  }
  assert.deepEqual(finished, [true, true]);
});

test('logprobs: chat top_logprobs and completions logprobs', async () => {
  const r = await client.chat.completions.create({
    model: server.model,
    messages,
    max_tokens: 5,
    logprobs: true,
    top_logprobs: 3,
    // Greedy: a random draw could end at EOS before max_tokens.
    temperature: 0,
  });
  const content = r.choices[0].logprobs?.content ?? [];
  assert.equal(content.length, 5);
  for (const lp of content) {
    assert.ok(lp.logprob <= 0);
    assert.equal(lp.top_logprobs.length, 3);
    assert.deepEqual(lp.bytes, [...Buffer.from(lp.token, 'utf8')]);
  }
  assert.equal(content.length, r.usage?.completion_tokens);

  const c = await client.completions.create({
    model: server.model,
    prompt: 'Hello',
    max_tokens: 4,
    logprobs: 2,
    temperature: 0,
  });
  const lps = c.choices[0].logprobs!;
  assert.equal(lps.tokens?.length, 4);
  assert.equal(lps.token_logprobs?.length, 4);
  assert.equal(Object.keys(lps.top_logprobs?.[0] ?? {}).length <= 2, true);
  assert.deepEqual(lps.text_offset?.[0], 0);

  const s = await client.chat.completions.create({
    model: server.model,
    messages,
    max_tokens: 4,
    logprobs: true,
    stream: true,
    temperature: 0,
  });
  let n = 0;
  for await (const chunk of s) n += chunk.choices[0]?.logprobs?.content?.length ?? 0;
  assert.equal(n, 4);
});

test('models list and one model', async () => {
  const list = await client.models.list();
  assert.deepEqual(
    list.data.map((m) => m.id),
    [server.model],
  );
  const one = await client.models.retrieve(server.model);
  assert.equal(one.id, server.model);
  await assert.rejects(client.models.retrieve('no-such-model'), (err: unknown) => err instanceof OpenAI.NotFoundError);
});

test('client errors surface as the typed errors of the openai package', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages }),
    (err: unknown) => err instanceof OpenAI.NotFoundError && /no-such-model/.test(err.message),
  );
  await assert.rejects(
    client.chat.completions.create({
      model: server.model,
      messages,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'nope' } } },
    }),
    (err: unknown) => err instanceof OpenAI.BadRequestError && /invalid JSON schema/.test(err.message),
  );
  await assert.rejects(
    client.chat.completions.create({ model: server.model, messages, max_tokens: -1 }),
    (err: unknown) => err instanceof OpenAI.BadRequestError && (err.error as { param: string }).param === 'max_tokens',
  );
});
