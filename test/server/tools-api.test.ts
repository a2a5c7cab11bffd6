import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { ChatTemplate } from '../../src/loader/chat-template.ts';
import type { ChatTemplate as ServerTemplate } from '../../src/server/models.ts';
import { post } from './harness.ts';
import {
  WEATHER_CALL as CALL,
  closeScriptedServers,
  hermesTemplate as hermes,
  serveScript,
  thinkingTemplate as thinking,
} from './scripted-model.ts';

after(closeScriptedServers);

/** A scripted model's server (scripted-model.ts) with OpenAI and Ollama clients of it. */
async function serve(script: string, template: ServerTemplate) {
  const served = await serveScript(script, template);
  return {
    ...served,
    openai: new OpenAI({ baseURL: `${served.url}/v1`, apiKey: 'unused', maxRetries: 0 }),
    ollama: new Ollama({ host: served.url }),
  };
}

const tools = [
  {
    type: 'function' as const,
    function: {
      name: 'get_weather',
      description: 'The weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', description: 'A city' } },
        required: ['city'],
      },
    },
  },
];
const messages = [{ role: 'user' as const, content: 'Weather in Paris?' }];

test('OpenAI: a Hermes tool call, not streamed: content before it, tool_calls, finish_reason tool_calls', async () => {
  const { openai, prompt } = await serve(CALL, hermes);
  const r = await openai.chat.completions.create({ model: 'm', messages, tools });
  const choice = r.choices[0]!;
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, 'Checking.');
  const call = choice.message.tool_calls![0]!;
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_/);
  assert.equal(call.type === 'function' && call.function.name, 'get_weather');
  assert.deepEqual(call.type === 'function' && JSON.parse(call.function.arguments), { city: 'Paris' });
  // The template got the tools.
  assert.match(prompt(), /<tools> \{"type": "function", "function": \{"name": "get_weather"/);
});

test('OpenAI: a Hermes tool call, streamed as it is written: its name first, then its arguments in pieces', async () => {
  const { openai } = await serve(CALL, hermes);
  const whole = await openai.chat.completions.create({ model: 'm', messages, tools });
  const wholeCall = whole.choices[0]!.message.tool_calls![0]!;
  const stream = await openai.chat.completions.create({ model: 'm', messages, tools, stream: true });
  let content = '';
  let finish: string | null = null;
  const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    content += c.delta.content ?? '';
    deltas.push(...(c.delta.tool_calls ?? []));
    finish = c.finish_reason ?? finish;
  }
  assert.equal(content, 'Checking.');
  const [first, ...rest] = deltas;
  assert.match(first!.id!, /^call_/);
  assert.deepEqual(
    { ...first, id: undefined },
    {
      index: 0,
      id: undefined,
      type: 'function',
      function: { name: 'get_weather', arguments: '' },
    },
  );
  assert.ok(rest.length > 5, `${rest.length} argument deltas`);
  for (const d of rest) assert.deepEqual(Object.keys(d).sort(), ['function', 'index']);
  const args = rest.map((d) => d.function!.arguments).join('');
  assert.equal(
    wholeCall.type === 'function' && wholeCall.function.arguments,
    args,
    'the arguments a whole answer gives',
  );
  assert.deepEqual(JSON.parse(args), { city: 'Paris' });
  assert.equal(finish, 'tool_calls');
});

/** Calls written as Qwen3-Coder's template writes them (`<tool_call>` around `<function=…>`, one `<parameter=…>` each). */
const xmlCallTemplate = new ChatTemplate(
  '{% if tools %}<tools>{{ tools | length }}</tools>{% endif %}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}' +
    '{% endfor %}<|assistant|>{# a call: <tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter> #}',
  'qwen3-coder-style',
  {},
);

test('OpenAI: an answer goes back into messages as the SDK returns it (refusal, annotations, parsed, null audio)', async () => {
  const { openai, url, prompt } = await serve(CALL, hermes);
  const whole = await openai.chat.completions.create({ model: 'm', messages, tools });
  assert.equal(whole.choices[0]!.message.refusal, null);
  assert.deepEqual(whole.choices[0]!.message.annotations, []);
  const answer = (await openai.chat.completions.stream({ model: 'm', messages, tools }).finalChatCompletion())
    .choices[0]!.message;
  assert.ok('parsed' in answer && 'refusal' in answer, 'the SDK adds parsed and refusal');
  const call = answer.tool_calls![0]!;
  const result = { role: 'tool', tool_call_id: call.id, content: 'sunny', name: 'get_weather' };
  const assistant = { ...answer, audio: null, function_call: null, annotations: [] };
  const next = await openai.chat.completions.create({
    model: 'm',
    messages: [...messages, assistant, result as OpenAI.ChatCompletionToolMessageParam],
    tools,
  });
  assert.equal(next.choices[0]!.finish_reason, 'tool_calls');
  assert.match(prompt(), /"name": "get_weather"\}\n<\/tool_call>/);
  const refused = await post(`${url}/v1/chat/completions`, {
    model: 'm',
    messages: [...messages, { role: 'assistant', content: 'x', audio: { id: 'audio_1' } }],
  });
  assert.equal(refused.status, 400);
  assert.match((refused.json.error as { message: string }).message, /^messages\[1\]\.audio: /);
});

test('OpenAI: parallel_tool_calls false under tool_choice auto keeps only the first call, streamed and not', async () => {
  const call = (city: string) => `<tool_call>\n{"name": "get_weather", "arguments": {"city": "${city}"}}\n</tool_call>`;
  const { openai } = await serve(call('Paris') + call('Oslo'), hermes);
  const cities = (calls: { function: { arguments: string } }[]) =>
    calls.map((c) => JSON.parse(c.function.arguments).city);
  const ask = { model: 'm', messages, tools };
  const both = await openai.chat.completions.create(ask);
  assert.deepEqual(cities(both.choices[0]!.message.tool_calls as never), ['Paris', 'Oslo']);
  const one = await openai.chat.completions.create({ ...ask, parallel_tool_calls: false });
  assert.deepEqual(cities(one.choices[0]!.message.tool_calls as never), ['Paris']);
  assert.equal(one.choices[0]!.finish_reason, 'tool_calls');
  const streamed = await openai.chat.completions.stream({ ...ask, parallel_tool_calls: false }).finalChatCompletion();
  assert.deepEqual(cities(streamed.choices[0]!.message.tool_calls as never), ['Paris']);
});

test('OpenAI: Qwen3-Coder calls (<function=…>, <parameter=…>) with their values typed by the tool schema', async () => {
  const forecast = {
    type: 'function' as const,
    function: {
      name: 'get_forecast',
      parameters: {
        type: 'object',
        properties: {
          city: { type: 'string' },
          days: { type: 'integer' },
          metric: { type: 'boolean' },
          extra: { type: 'object' },
          note: { type: ['string', 'null'] },
        },
      },
    },
  };
  const call =
    'Let me look.<tool_call>\n<function=get_forecast>\n<parameter=city>\n2024\n</parameter>\n' +
    '<parameter=days>\n3\n</parameter>\n<parameter=metric>\ntrue\n</parameter>\n' +
    '<parameter=extra>\n{"hours": [1, 2]}\n</parameter>\n<parameter=note>\nline one\nline two\n</parameter>\n' +
    '<parameter=unknown>\n7\n</parameter>\n</function>\n</tool_call>';
  const args = {
    city: '2024',
    days: 3,
    metric: true,
    extra: { hours: [1, 2] },
    note: 'line one\nline two',
    unknown: '7',
  };
  const { openai } = await serve(call, xmlCallTemplate);
  const whole = await openai.chat.completions.create({ model: 'm', messages, tools: [forecast] });
  const choice = whole.choices[0]!;
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, 'Let me look.');
  const first = choice.message.tool_calls![0]!;
  assert.deepEqual(first.type === 'function' && [first.function.name, JSON.parse(first.function.arguments)], [
    'get_forecast',
    args,
  ]);
  const stream = await openai.chat.completions.create({ model: 'm', messages, tools: [forecast], stream: true });
  let streamed = '';
  let content = '';
  for await (const chunk of stream) {
    content += chunk.choices[0]?.delta.content ?? '';
    for (const t of chunk.choices[0]?.delta.tool_calls ?? []) streamed += t.function?.arguments ?? '';
  }
  assert.equal(content, 'Let me look.');
  assert.deepEqual(JSON.parse(streamed), args);
});

test('OpenAI: an earlier call and its result go back to the template; tool_choice none still renders the tools', async () => {
  const { openai, prompt } = await serve('It is sunny.', hermes);
  const r = await openai.chat.completions.create({
    model: 'm',
    tools,
    tool_choice: 'none',
    messages: [
      ...messages,
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        ],
      },
      {
        role: 'tool',
        tool_call_id: 'call_1',
        content: 'sunny',
        name: 'get_weather',
      } as OpenAI.ChatCompletionToolMessageParam,
    ],
  });
  assert.equal(r.choices[0]!.message.content, 'It is sunny.');
  assert.equal(r.choices[0]!.finish_reason, 'stop');
  const rendered = prompt();
  assert.match(rendered, /<tools>/, 'the tools stay in the prompt, as vLLM keeps them');
  assert.match(rendered, /\{ "arguments": \{"city": "Paris"\}, "name": "get_weather"\}/);
  assert.match(rendered, /<tool_response>\n\{"name": "get_weather", "content": "sunny"\}/);
});

test('OpenAI: tool_choice required and a named function are held to JSON calls by a grammar; a named one finishes as stop', async () => {
  const { openai, engine } = await serve('[{"name": "get_weather", "arguments": {"city": "Oslo"}}]', hermes);
  for (const tool_choice of ['required', { type: 'function', function: { name: 'get_weather' } }] as const) {
    const r = await openai.chat.completions.create({ model: 'm', messages, tools, tool_choice });
    // OpenAI finishes a call it was told to make by name with "stop".
    assert.equal(r.choices[0]!.finish_reason, tool_choice === 'required' ? 'tool_calls' : 'stop');
    const stream = await openai.chat.completions.create({ model: 'm', messages, tools, tool_choice, stream: true });
    let finish: string | null = null;
    for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
    assert.equal(finish, r.choices[0]!.finish_reason);
    const call = r.choices[0]!.message.tool_calls![0]!;
    assert.deepEqual(call.type === 'function' && JSON.parse(call.function.arguments), { city: 'Oslo' });
    const grammar = engine().lastRequest!.grammar;
    assert.equal(grammar?.type, 'json_schema');
    const schema =
      grammar?.type === 'json_schema' ? (grammar.schema as { items: { properties: { name: unknown } } }) : null;
    assert.deepEqual(schema?.items.properties.name, { const: 'get_weather' });
  }
});

test('OpenAI: a forced call cut by max_tokens comes as a tool call with its arguments so far, never as the call list', async () => {
  const script = '[{"name": "get_weather", "arguments": {"city": "Oslo"}}]';
  const { openai } = await serve(script, hermes);
  const ask = { model: 'm', messages, tools, tool_choice: 'required' as const, max_tokens: 48 };
  const r = await openai.chat.completions.create(ask);
  const choice = r.choices[0]!;
  assert.equal(choice.finish_reason, 'length');
  assert.equal(choice.message.content, null);
  const call = choice.message.tool_calls![0]!;
  assert.deepEqual(call.type === 'function' && call.function, { name: 'get_weather', arguments: '{"city":"' });
  const stream = await openai.chat.completions.create({ ...ask, stream: true });
  let content = '';
  let finish: string | null = null;
  const args: string[] = [];
  for await (const chunk of stream) {
    content += chunk.choices[0]?.delta.content ?? '';
    for (const t of chunk.choices[0]?.delta.tool_calls ?? []) args.push(t.function?.arguments ?? '');
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(content, '');
  assert.ok(args.length > 3, 'the arguments came as they were written');
  assert.equal(args.join(''), '{"city":"');
  assert.equal(finish, 'length');
});

test("vLLM's skip_special_tokens and OpenAI's reasoning effort reach the engine and the template", async () => {
  const effort = new ChatTemplate('{{ messages[0].content }}|{{ reasoning_effort }}|', 'effort', {});
  const { openai, engine, prompt } = await serve('x', effort);
  await openai.chat.completions.create({ model: 'm', messages, reasoning_effort: 'low' });
  assert.equal(prompt(), 'Weather in Paris?|low|');
  assert.equal(engine().lastRequest!.skipSpecialTokens, true);
  const kwargs = { chat_template_kwargs: { reasoning_effort: 'high' }, skip_special_tokens: false };
  await openai.chat.completions.create({ model: 'm', messages, reasoning_effort: 'low', ...(kwargs as object) });
  assert.equal(prompt(), 'Weather in Paris?|high|', 'chat_template_kwargs win');
  assert.equal(engine().lastRequest!.skipSpecialTokens, false);
  const response = await openai.responses.create({
    model: 'm',
    input: 'Weather in Paris?',
    reasoning: { effort: 'medium' },
  });
  assert.equal(prompt(), 'Weather in Paris?|medium|', "the Responses API's reasoning.effort too");
  assert.equal(response.reasoning?.effort, 'medium');
  await openai.completions.create({ model: 'm', prompt: 'x', ...({ skip_special_tokens: false } as object) });
  assert.equal(engine().lastRequest!.skipSpecialTokens, false);
  await assert.rejects(
    openai.chat.completions.create({ model: 'm', messages, audio: { voice: 'alloy', format: 'mp3' } }),
    /audio output is not supported/,
  );
  await openai.chat.completions.create({ model: 'm', messages, modalities: ['text'], audio: null });
});

test('OpenAI: 400 for a tool_choice naming an unknown tool, and for tools a template cannot render', async () => {
  const { openai } = await serve('x', hermes);
  await assert.rejects(
    openai.chat.completions.create({
      model: 'm',
      messages,
      tools,
      tool_choice: { type: 'function', function: { name: 'nope' } },
    }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && /tool_choice names "nope"/.test(e.message),
  );
  const plain = await serve('x', thinking);
  await assert.rejects(
    plain.openai.chat.completions.create({ model: 'm', messages, tools }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && /cannot render tools/.test(e.message),
  );
});

test('OpenAI: reasoning_content apart from the content, streamed and not; enable_thinking reaches the template', async () => {
  const { openai, prompt } = await serve('<think>\nPlan it.\n</think>\n\nThe answer.', thinking);
  const r = await openai.chat.completions.create({ model: 'm', messages });
  const message = r.choices[0]!.message as { content: string; reasoning_content?: string };
  assert.equal(message.content, 'The answer.');
  assert.equal(message.reasoning_content, '\nPlan it.\n');
  const stream = await openai.chat.completions.create({ model: 'm', messages, stream: true });
  let content = '';
  let reasoning = '';
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta as { content?: string; reasoning_content?: string } | undefined;
    content += d?.content ?? '';
    reasoning += d?.reasoning_content ?? '';
  }
  assert.equal(content, 'The answer.');
  assert.equal(reasoning, '\nPlan it.\n');
  await openai.chat.completions.create({
    model: 'm',
    messages,
    ...({ chat_template_kwargs: { enable_thinking: false } } as object),
  });
  assert.ok(prompt().endsWith('<think>\n\n</think>\n\n'));
});

test('on a thinking template, structured output and forced calls are held only after the reasoning (vLLM, Ollama think)', async () => {
  const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
  const { openai, ollama, engine } = await serve('<think>\nPlan.\n</think>\n\n{"city": "Oslo"}', thinking);
  const response_format = { type: 'json_schema' as const, json_schema: { name: 'c', schema } };
  const r = await openai.chat.completions.create({ model: 'm', messages, response_format });
  const message = r.choices[0]!.message as { content: string; reasoning_content?: string };
  assert.deepEqual(JSON.parse(message.content), { city: 'Oslo' });
  assert.equal(message.reasoning_content, '\nPlan.\n');
  const block = { type: 'after_reasoning', begin: '<think>', end: '</think>' };
  const inner = { type: 'json_schema', schema };
  assert.deepEqual(engine().lastRequest!.grammar, { ...block, startsInside: false, inner });
  // A prompt that opened the block (a prefill here; DeepSeek-R1's template does it itself) starts inside it.
  await openai.chat.completions.create({
    model: 'm',
    messages: [...messages, { role: 'assistant', content: '<think>\n' }],
    response_format,
    ...({ add_generation_prompt: false, continue_final_message: true } as object),
  });
  assert.deepEqual(engine().lastRequest!.grammar, { ...block, startsInside: true, inner });
  // Thinking off (the prompt closed an empty block): held from the first token.
  await openai.chat.completions.create({
    model: 'm',
    messages,
    response_format,
    ...({ chat_template_kwargs: { enable_thinking: false } } as object),
  });
  assert.deepEqual(engine().lastRequest!.grammar, inner);
  // Ollama holds `format` after the thinking it was asked to separate; without `think`, from the first token.
  const o = await ollama.chat({ model: 'm', messages, format: schema, think: true });
  assert.equal(o.message.thinking, '\nPlan.\n');
  assert.deepEqual(engine().lastRequest!.grammar, { ...block, startsInside: false, inner });
  await ollama.chat({ model: 'm', messages, format: schema });
  assert.deepEqual(engine().lastRequest!.grammar, inner);
});

test('a prefill that leaves <think> open is gone on from inside the reasoning (vLLM continue_final_message, Ollama)', async () => {
  const prefilled = [...messages, { role: 'assistant' as const, content: '<think>\nLet me' }];
  const { openai, ollama, prompt } = await serve(' see.\n</think>\n\nThe answer.', thinking);
  const r = await openai.chat.completions.create({
    model: 'm',
    messages: prefilled,
    ...({ add_generation_prompt: false, continue_final_message: true } as object),
  });
  const message = r.choices[0]!.message as { content: string; reasoning_content?: string };
  assert.ok(prompt().endsWith('<|assistant|><think>\nLet me'), prompt());
  assert.equal(message.reasoning_content, ' see.\n');
  assert.equal(message.content, 'The answer.');
  const o = await ollama.chat({ model: 'm', messages: prefilled, think: true });
  assert.equal(o.message.thinking, ' see.\n');
  assert.equal(o.message.content, 'The answer.');
  // A block the prefill closed is over: the answer is content.
  const closed = await serve(' answer.', thinking);
  const c = await closed.openai.chat.completions.create({
    model: 'm',
    messages: [...messages, { role: 'assistant', content: '<think>Done.</think>The' }],
    ...({ add_generation_prompt: false, continue_final_message: true } as object),
  });
  const cm = c.choices[0]!.message as { content: string; reasoning_content?: string };
  assert.equal(cm.content, ' answer.');
  assert.equal(cm.reasoning_content ?? '', '');
});

test('Ollama: tool calls with arguments as an object, streamed and not; streamed, a message each as it is complete', async () => {
  const { ollama } = await serve(CALL, hermes);
  const r = await ollama.chat({ model: 'm', messages, tools });
  assert.equal(r.message.content, 'Checking.');
  assert.deepEqual(r.message.tool_calls, [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
  const stream = await ollama.chat({ model: 'm', messages, tools, stream: true });
  let content = '';
  const calls: unknown[] = [];
  for await (const part of stream) {
    content += part.message.content;
    calls.push(...(part.message.tool_calls ?? []));
  }
  assert.equal(content, 'Checking.');
  assert.deepEqual(calls, [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
  const call = (city: string) => `<tool_call>\n{"name": "get_weather", "arguments": {"city": "${city}"}}\n</tool_call>`;
  const two = await serve(call('Paris') + call('Oslo'), hermes);
  const parts: unknown[] = [];
  for await (const part of await two.ollama.chat({ model: 'm', messages, tools, stream: true })) {
    if (part.message.tool_calls) parts.push(part.message.tool_calls.map((c) => c.function.arguments.city));
  }
  assert.deepEqual(parts, [['Paris'], ['Oslo']]);
});

test('Ollama: think true puts the thinking in message.thinking; a tool message carries tool_name', async () => {
  const { ollama } = await serve('<think>Hmm.</think>Done.', thinking);
  const r = await ollama.chat({ model: 'm', messages, think: true });
  assert.equal(r.message.thinking, 'Hmm.');
  assert.equal(r.message.content, 'Done.');
  let thinkingText = '';
  let content = '';
  for await (const part of await ollama.chat({ model: 'm', messages, think: true, stream: true })) {
    thinkingText += part.message.thinking ?? '';
    content += part.message.content;
  }
  assert.equal(thinkingText, 'Hmm.');
  assert.equal(content, 'Done.');
  const withTool = await serve('ok', hermes);
  // A template that cannot think is refused thinking, as Ollama refuses it; think false is fine.
  for (const call of [
    withTool.ollama.chat({ model: 'm', messages, think: true }),
    withTool.ollama.generate({ model: 'm', prompt: 'x', think: true }),
    withTool.ollama.generate({ model: 'm', prompt: 'x', think: true, raw: true }),
  ]) {
    await assert.rejects(call, /"m" does not support thinking/);
  }
  assert.equal((await withTool.ollama.chat({ model: 'm', messages, think: false })).message.content, 'ok');
  const answer = await withTool.ollama.chat({
    model: 'm',
    tools,
    messages: [
      ...messages,
      {
        role: 'assistant',
        content: '',
        tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }],
      },
      { role: 'tool', content: 'sunny', tool_name: 'get_weather' } as never,
    ],
  });
  assert.equal(answer.message.content, 'ok');
});

test('Ollama: an assistant turn without content (as ollama-python sends it) and a tool_call_id are read', async () => {
  const { url, prompt } = await serve('ok', hermes);
  const res = await fetch(`${url}/api/chat`, {
    method: 'POST',
    body: JSON.stringify({
      model: 'm',
      stream: false,
      tools,
      messages: [
        ...messages,
        { role: 'assistant', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
        { role: 'tool', content: 'sunny', tool_name: 'get_weather', tool_call_id: 'call_1' },
        { role: 'user', content: null },
      ],
    }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal((await res.json()).message.content, 'ok');
  assert.match(prompt(), /<tool_call>\n\{ "arguments": \{"city": "Paris"\}, "name": "get_weather"\}\n<\/tool_call>/);
  assert.match(prompt(), /<tool_response>\n\{"name": "get_weather", "content": "sunny"\}/);
  // A template that reads tool_call_id gets it.
  const ids = new ChatTemplate(
    '{# tools #}{% for m in messages %}{{ m.role }}/{{ m.tool_call_id }};{% endfor %}',
    'ids',
    {},
  );
  const withIds = await serve('ok', ids);
  const turns = [
    { role: 'user', content: 'w?' },
    { role: 'tool', content: 'sunny', tool_name: 'get_weather', tool_call_id: 'call_1' },
  ];
  await fetch(`${withIds.url}/api/chat`, {
    method: 'POST',
    body: JSON.stringify({ model: 'm', stream: false, messages: turns }),
  });
  assert.equal(withIds.prompt(), 'user/;tool/call_1;');
});

test('/api/show lists tools and thinking among the capabilities when the template knows them', async () => {
  assert.deepEqual((await (await serve('x', hermes)).ollama.show({ model: 'm' })).capabilities, [
    'completion',
    'tools',
  ]);
  assert.deepEqual((await (await serve('x', thinking)).ollama.show({ model: 'm' })).capabilities, [
    'completion',
    'thinking',
  ]);
});
