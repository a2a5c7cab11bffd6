import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { ChatTemplate } from '../../src/loader/chat-template.ts';
import type { ServeConfig } from '../../src/server/config.ts';
import type { ChatTemplate as ServerTemplate } from '../../src/server/models.ts';
import { FakeSource, fakeTemplate } from './fake-engine.ts';
import { capturedLog, eventually, request, startTestServer } from './harness.ts';
import {
  WEATHER_CALL as CALL,
  closeScriptedServers,
  hermesTemplate as hermes,
  serveScript,
  thinkingTemplate as thinking,
  weatherConversation,
} from './scripted-model.ts';

after(closeScriptedServers);

/** A scripted model's server (scripted-model.ts) and an Anthropic client of it. */
async function serve(
  script: string,
  template: ServerTemplate,
  config: Partial<ServeConfig> = {},
  contextLength = 4096,
) {
  const served = await serveScript(script, template, { config, contextLength });
  const anthropic = new Anthropic({ baseURL: served.url, apiKey: config.apiKey ?? 'unused', maxRetries: 0 });
  return { ...served, anthropic };
}

const weather = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: {
    type: 'object' as const,
    properties: { city: { type: 'string', description: 'A city' } },
    required: ['city'],
  },
};
const user = (content: string) => [{ role: 'user' as const, content }];

test('a text answer: system first, one text block, end_turn, usage counted', async () => {
  const { anthropic, prompt, engine } = await serve('Hello there.', fakeTemplate);
  const m = await anthropic.messages.create({ model: 'm', max_tokens: 64, system: 'Be brief.', messages: user('Hi') });
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.match(m.id, /^msg_/);
  assert.deepEqual(m.content, [{ type: 'text', text: 'Hello there.', citations: null }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.stop_sequence, null);
  assert.equal(prompt(), '<|system|>Be brief.<|user|>Hi<|assistant|>');
  const promptTokens = (engine().lastRequest!.prompt as number[]).length;
  assert.equal(m.usage.input_tokens, promptTokens);
  assert.equal(m.usage.output_tokens, 12);
  assert.equal(engine().lastRequest!.params?.maxTokens, 64);
});

test('stop reasons: the token limit, and a stop sequence named', async () => {
  const { anthropic } = await serve('Hello there.', fakeTemplate);
  const cut = await anthropic.messages.create({ model: 'm', max_tokens: 5, messages: user('Hi') });
  assert.equal(cut.stop_reason, 'max_tokens');
  assert.deepEqual(cut.content, [{ type: 'text', text: 'Hello', citations: null }]);
  const stopped = await anthropic.messages.create({
    model: 'm',
    max_tokens: 64,
    messages: user('Hi'),
    stop_sequences: [' there'],
  });
  assert.equal(stopped.stop_reason, 'stop_sequence');
  assert.equal(stopped.stop_sequence, ' there');
  assert.deepEqual(stopped.content, [{ type: 'text', text: 'Hello', citations: null }]);
});

test('client tools: the template gets them; the call is a tool_use block, stop_reason tool_use', async () => {
  const { anthropic, prompt } = await serve(CALL, hermes);
  const m = await anthropic.messages.create({
    model: 'm',
    max_tokens: 200,
    messages: user('Weather in Paris?'),
    tools: [weather],
  });
  assert.match(prompt(), /<tools> \{"type": "function", "function": \{"name": "get_weather"/);
  assert.equal(m.stop_reason, 'tool_use');
  assert.deepEqual(
    m.content.map((b) => b.type),
    ['text', 'tool_use'],
  );
  const call = m.content[1]!;
  assert.ok(call.type === 'tool_use', call.type);
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(call.input, { city: 'Paris' });
  assert.match(call.id, /^toolu_/);
});

test('disable_parallel_tool_use keeps only the first tool_use block', async () => {
  const call = (city: string) => `<tool_call>\n{"name": "get_weather", "arguments": {"city": "${city}"}}\n</tool_call>`;
  const { anthropic } = await serve(call('Paris') + call('Oslo'), hermes);
  const ask = { model: 'm', max_tokens: 200, messages: user('Weather?'), tools: [weather] };
  const both = await anthropic.messages.create(ask);
  assert.equal(both.content.filter((b) => b.type === 'tool_use').length, 2);
  const one = await anthropic.messages.create({
    ...ask,
    tool_choice: { type: 'auto', disable_parallel_tool_use: true },
  });
  assert.deepEqual(
    one.content.map((b) => (b.type === 'tool_use' ? b.input : b.type)),
    [{ city: 'Paris' }],
  );
  assert.equal(one.stop_reason, 'tool_use');
});

test('a forced call cut by max_tokens shows no text of the call list; streamed, the tool_use block as far as it got', async () => {
  const { anthropic } = await serve('[{"name": "get_weather", "arguments": {"city": "Oslo"}}]', hermes);
  const ask = { model: 'm', max_tokens: 46, messages: user('Weather?'), tools: [weather] };
  const m = await anthropic.messages.create({ ...ask, tool_choice: { type: 'any' } });
  assert.deepEqual(m.content, []);
  assert.equal(m.stop_reason, 'max_tokens');
  const stream = anthropic.messages.stream({ ...ask, tool_choice: { type: 'tool', name: 'get_weather' } });
  let partial = '';
  stream.on('inputJson', (delta) => {
    partial += delta;
  });
  const streamed = await stream.finalMessage();
  assert.deepEqual(
    streamed.content.map((c) => c.type === 'tool_use' && c.name),
    ['get_weather'],
  );
  assert.equal(partial, '{"city":');
  assert.equal(streamed.stop_reason, 'max_tokens');
});

test('streamed: the named events in order, and the SDK assembles the same message', async () => {
  const { url, anthropic } = await serve(CALL, hermes);
  const body = { model: 'm', max_tokens: 200, messages: user('Weather in Paris?'), tools: [weather], stream: true };
  const raw = await fetch(`${url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const sse = await raw.text();
  const events = [...sse.matchAll(/event: (\S+)\ndata: (.*)\n/g)].map((m) => {
    const data = JSON.parse(m[2]!);
    assert.equal(data.type, m[1], 'the event name is its type');
    return data as { type: string; index?: number; delta?: { type: string; text?: string; partial_json?: string } };
  });
  const types = events.map((e) => e.type).filter((t, i, all) => t !== all[i - 1]);
  assert.deepEqual(types, [
    'message_start',
    'content_block_start',
    'content_block_delta',
    'content_block_stop',
    'content_block_start',
    'content_block_delta',
    'content_block_stop',
    'message_delta',
    'message_stop',
  ]);
  const text = events.filter((e) => e.delta?.type === 'text_delta').map((e) => e.delta!.text);
  assert.equal(text.join(''), 'Checking.', 'no tool-call markup leaks into the text');
  const json = events.filter((e) => e.delta?.type === 'input_json_delta');
  assert.ok(json.length > 5, 'the input streams as it is written');
  assert.ok(json.every((e) => e.index === 1));
  assert.deepEqual(JSON.parse(json.map((e) => e.delta!.partial_json).join('')), { city: 'Paris' });
  const started = events.find((e) => e.type === 'content_block_start' && e.index === 1) as unknown as {
    content_block: Record<string, unknown>;
  };
  assert.deepEqual(
    { ...started.content_block, id: 0 },
    {
      type: 'tool_use',
      id: 0,
      name: 'get_weather',
      input: {},
      caller: { type: 'direct' },
    },
  );
  const final = await anthropic.messages
    .stream({ model: 'm', max_tokens: 200, messages: user('Weather in Paris?'), tools: [weather] })
    .finalMessage();
  assert.equal(final.stop_reason, 'tool_use');
  assert.deepEqual(final.content[0], { type: 'text', text: 'Checking.', citations: null });
  assert.ok(final.content[1]!.type === 'tool_use', final.content[1]!.type);
  assert.deepEqual(final.content[1]!.input, { city: 'Paris' });
});

test('thinking: a thinking block before the text; thinking disabled reaches the template as enable_thinking false', async () => {
  const { anthropic } = await serve('<think>ponder</think>Answer.', thinking);
  const m = await anthropic.messages.create({ model: 'm', max_tokens: 64, messages: user('Why?') });
  assert.deepEqual(m.content, [
    { type: 'thinking', thinking: 'ponder', signature: '' },
    { type: 'text', text: 'Answer.', citations: null },
  ]);
  const off = await serve('Answer.', thinking);
  const plain = await off.anthropic.messages.create({
    model: 'm',
    max_tokens: 64,
    messages: user('Why?'),
    thinking: { type: 'disabled' },
  });
  assert.match(off.prompt(), /<\|assistant\|><think>\n\n<\/think>\n\n$/);
  assert.deepEqual(plain.content, [{ type: 'text', text: 'Answer.', citations: null }]);
});

test('a conversation with tool_use and tool_result renders as chat completions renders it; count_tokens counts it', async () => {
  const { anthropic, prompt, url, engine } = await serve('It is 21 degrees.', hermes);
  const messages: Anthropic.MessageParam[] = [
    { role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] },
    {
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 'look it up', signature: 'x' },
        { type: 'text', text: 'Checking.', citations: null },
        { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
      ],
    },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '{"temp": 21}' }] },
  ];
  await anthropic.messages.create({
    model: 'm',
    max_tokens: 64,
    system: 'Answer in one line.',
    messages,
    tools: [weather],
  });
  const viaMessages = prompt();
  const promptTokens = (engine().lastRequest!.prompt as number[]).length;
  assert.match(
    viaMessages,
    /<tool_response>\n\{"name": "get_weather", "content": "\{\\"temp\\": 21\}"\}\n<\/tool_response>/,
  );
  const { name, description, input_schema: parameters } = weather;
  const chat = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    body: { model: 'm', ...weatherConversation({ id: 'toolu_1', name, description, parameters }, 'Checking.') },
  });
  assert.equal(chat.status, 200);
  assert.equal(viaMessages, prompt());
  const count = await anthropic.messages.countTokens({
    model: 'm',
    system: 'Answer in one line.',
    messages,
    tools: [weather],
  });
  assert.equal(count.input_tokens, promptTokens);
});

test('output_config.format: the answer is held to the JSON schema', async () => {
  const { anthropic, engine } = await serve('{"a": 1}', fakeTemplate);
  const schema = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] };
  await anthropic.messages.create({
    model: 'm',
    max_tokens: 64,
    messages: user('JSON please'),
    output_config: { format: { type: 'json_schema', schema } },
  });
  assert.deepEqual(engine().lastRequest!.grammar, { type: 'json_schema', schema });
});

test("errors in Anthropic's shape, naming the field; the key also as x-api-key", async () => {
  const { url } = await serve('x', hermes);
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ max_tokens: undefined }, /^max_tokens: /],
    [
      { messages: [{ role: 'user', content: [{ type: 'image', source: {} }] }] },
      /^messages\[0\]\.content\[0\]: a user message's block type "image" is not supported$/,
    ],
    [
      { tools: [{ type: 'web_search_20250305', name: 'web_search' }] },
      /^tools\[0\]: type "web_search_20250305" is not supported \(custom tools only\)$/,
    ],
    [{ tools: [weather], tool_choice: { type: 'tool' } }, /^tool_choice\.name: a tool tool_choice names its tool$/],
    [
      { tools: [weather], tool_choice: { type: 'tool', name: 'nope' } },
      /tool_choice names "nope", which is not among the tools/,
    ],
  ];
  for (const [extra, pattern] of cases) {
    const body = { model: 'm', max_tokens: 8, messages: user('hi'), ...extra };
    const r = await request(`${url}/v1/messages`, { method: 'POST', body });
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.equal(r.json.type, 'error');
    const error = r.json.error as { type: string; message: string };
    assert.equal(error.type, 'invalid_request_error');
    assert.match(error.message, pattern, JSON.stringify(extra));
  }
  const missing = await request(`${url}/v1/messages`, {
    method: 'POST',
    body: { model: 'nope', max_tokens: 8, messages: user('hi') },
  });
  assert.equal(missing.status, 404);
  assert.equal((missing.json.error as { type: string }).type, 'not_found_error');

  const secured = await serve('Hello.', fakeTemplate, { apiKey: 'sekrit' });
  const m = await secured.anthropic.messages.create({ model: 'm', max_tokens: 8, messages: user('Hi') });
  assert.equal(m.content[0]!.type, 'text');
  const wrong = new Anthropic({ baseURL: secured.url, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(wrong.messages.create({ model: 'm', max_tokens: 8, messages: user('Hi') }), (e: Error) => {
    assert.ok(e instanceof Anthropic.AuthenticationError, e.message);
    return true;
  });
});

/** Qwen3's way of writing an earlier turn's reasoning, enough to see it reach the template. */
const writesReasoning = new ChatTemplate(
  '{% for m in messages %}<|{{ m.role }}|>{% if m.reasoning_content %}<r>{{ m.reasoning_content }}</r>{% endif %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}',
  'writes reasoning',
  {},
);

test('turns as the API reads them: system messages joined, same-role turns merged, thinking as reasoning, tool errors marked', async () => {
  const { anthropic, prompt } = await serve('ok', writesReasoning);
  await anthropic.messages.create({
    model: 'm',
    max_tokens: 8,
    system: [{ type: 'text', text: 'S1' }],
    messages: [
      { role: 'system', content: 'S2' } as never,
      {
        role: 'user',
        content: [
          { type: 'text', text: 'A' },
          { type: 'text', text: 'B' },
        ],
      },
      { role: 'user', content: 'C' },
      {
        role: 'assistant',
        content: [
          { type: 'redacted_thinking', data: 'opaque' },
          { type: 'thinking', thinking: 'look it up', signature: 'x' },
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', is_error: true, content: [{ type: 'text', text: 'boom' }] },
        ],
      },
    ],
  });
  assert.equal(
    prompt(),
    '<|system|>S1\nS2<|user|>A\nB\nC<|assistant|><r>look it up</r>Checking.<|tool|>Error: boom<|assistant|>',
  );
});

test('a last assistant turn is a prefill the answer goes on from (one with only thinking is left out)', async () => {
  const { anthropic, prompt } = await serve('42)', fakeTemplate);
  const m = await anthropic.messages.create({
    model: 'm',
    max_tokens: 8,
    messages: [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'The answer is (' },
    ],
  });
  assert.equal(prompt(), '<|user|>Hi<|assistant|>The answer is (');
  assert.equal(m.stop_reason, 'end_turn');
  await anthropic.messages.create({
    model: 'm',
    max_tokens: 8,
    messages: [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: '' }] },
    ],
  });
  assert.equal(prompt(), '<|user|>Hi<|assistant|>');
});

test("max_tokens is held to what the model's context leaves; a cut there is model_context_window_exceeded", async () => {
  const { anthropic, engine } = await serve('x'.repeat(200), fakeTemplate, {}, 64);
  const m = await anthropic.messages.create({ model: 'm', max_tokens: 16000, messages: user('Hi') });
  const promptTokens = (engine().lastRequest!.prompt as number[]).length;
  assert.equal(engine().lastRequest!.params?.maxTokens, 64 - promptTokens);
  assert.equal(m.stop_reason, 'model_context_window_exceeded');
  assert.equal(m.usage.output_tokens, 64 - promptTokens);
});

test('streamed thinking and a stop sequence: the SDK assembles both; message_delta says why it stopped', async () => {
  const { anthropic, url } = await serve('<think>ponder</think>Answer. More.', thinking);
  const final = await anthropic.messages
    .stream({ model: 'm', max_tokens: 64, messages: user('Why?'), stop_sequences: [' More'] })
    .finalMessage();
  assert.deepEqual(final.content, [
    { type: 'thinking', thinking: 'ponder', signature: '' },
    { type: 'text', text: 'Answer.', citations: null },
  ]);
  assert.equal(final.stop_reason, 'stop_sequence');
  assert.equal(final.stop_sequence, ' More');
  assert.ok(final.usage.output_tokens > 0, 'output tokens counted');
  const raw = await fetch(`${url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'm',
      max_tokens: 64,
      messages: user('Why?'),
      stop_sequences: [' More'],
      stream: true,
    }),
  });
  const sse = await raw.text();
  const delta = JSON.parse(/event: message_delta\ndata: (.*)\n/.exec(sse)![1]!);
  assert.deepEqual(delta.delta, {
    stop_reason: 'stop_sequence',
    stop_sequence: ' More',
    stop_details: null,
    container: null,
  });
  const starts = [...sse.matchAll(/event: content_block_start\ndata: (.*)\n/g)].map((x) => JSON.parse(x[1]!));
  assert.deepEqual(
    starts.map((x) => [x.index, x.content_block.type]),
    [
      [0, 'thinking'],
      [1, 'text'],
    ],
  );
});

test('a client that leaves a streamed message is not logged as a failure (nor as a shutdown)', async () => {
  const { log, lines } = capturedLog('info');
  const source = new FakeSource({ tokenDelayMs: 20, script: 'x'.repeat(200) }, 4096, 8, hermes);
  const server = await startTestServer(source, [{ name: 'm', path: '/nowhere', ref: '/nowhere' }], {}, log);
  try {
    const controller = new AbortController();
    const res = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', max_tokens: 200, stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await eventually(() => server.ctx.gate.size === 0, 2000, 'the request ends');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      lines.filter((l) => l.level === 50),
      [],
    );
  } finally {
    await server.close();
  }
});
