import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import OpenAI from 'openai';
import type { ChatTemplate as ServerTemplate } from '../../src/server/models.ts';
import { fakeTemplate } from './fake-engine.ts';
import { request } from './harness.ts';
import {
  WEATHER_CALL as CALL,
  closeScriptedServers,
  hermesTemplate as hermes,
  serveScript,
  thinkingTemplate as thinking,
  weatherConversation,
} from './scripted-model.ts';

after(closeScriptedServers);

/** A scripted model's server (scripted-model.ts) and an OpenAI client of it. */
async function serve(script: string, template: ServerTemplate) {
  const served = await serveScript(script, template);
  return { ...served, openai: new OpenAI({ baseURL: `${served.url}/v1`, apiKey: 'unused', maxRetries: 0 }) };
}

const weather = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string', description: 'A city' } }, required: ['city'] },
  strict: true,
};

test('a text answer: instructions as the system message, one output_text message, usage counted', async () => {
  const { openai, prompt, engine } = await serve('Hello there.', fakeTemplate);
  const r = await openai.responses.create({ model: 'm', instructions: 'Be brief.', input: 'Hi', temperature: 0 });
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.equal(r.status, 'completed');
  assert.equal(r.output_text, 'Hello there.');
  assert.equal(r.output.length, 1);
  const msg = r.output[0]!;
  assert.equal(msg.type, 'message');
  assert.equal(msg.type === 'message' && msg.role, 'assistant');
  assert.deepEqual(msg.type === 'message' && msg.content.map((p) => p.type), ['output_text']);
  assert.equal(prompt(), '<|system|>Be brief.<|user|>Hi<|assistant|>');
  assert.equal(engine().lastRequest!.params?.temperature, 0);
  const promptTokens = (engine().lastRequest!.prompt as number[]).length;
  assert.deepEqual(r.usage, {
    input_tokens: promptTokens,
    input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
    output_tokens: 12,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: promptTokens + 12,
  });
});

test('max_output_tokens cuts the answer: status incomplete, reason max_output_tokens', async () => {
  const { openai } = await serve('Hello there.', fakeTemplate);
  const r = await openai.responses.create({ model: 'm', input: 'Hi', max_output_tokens: 5 });
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.output_text, 'Hello');
  assert.equal(r.output[0]!.type === 'message' && r.output[0]!.status, 'incomplete');
});

test('function tools (flat, as the Responses API sends them): the template gets them; the call is a function_call item', async () => {
  const { openai, prompt } = await serve(CALL, hermes);
  const r = await openai.responses.create({ model: 'm', input: 'Weather in Paris?', tools: [weather] });
  assert.match(prompt(), /<tools> \{"type": "function", "function": \{"name": "get_weather"/);
  assert.deepEqual(
    r.output.map((o) => o.type),
    ['message', 'function_call'],
  );
  assert.equal(r.output_text, 'Checking.');
  const call = r.output[1]!;
  assert.ok(call.type === 'function_call');
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
  assert.match(call.call_id, /^call_/);
  assert.match(call.id!, /^fc_/);
  assert.equal(call.status, 'completed');
});

test('streamed: the named events in order, numbered, deltas adding up to the final response', async () => {
  const { openai } = await serve(CALL, hermes);
  const stream = await openai.responses.create({
    model: 'm',
    input: 'Weather in Paris?',
    tools: [weather],
    stream: true,
  });
  const events: { type: string; sequence_number: number; delta?: string }[] = [];
  for await (const e of stream) events.push(e as never);
  assert.deepEqual(
    events.map((e) => e.sequence_number),
    events.map((_, i) => i),
  );
  const types = events.map((e) => e.type).filter((t, i, all) => t !== all[i - 1]);
  assert.deepEqual(types, [
    'response.created',
    'response.in_progress',
    'response.output_item.added',
    'response.content_part.added',
    'response.output_text.delta',
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.output_item.added',
    'response.function_call_arguments.delta',
    'response.function_call_arguments.done',
    'response.output_item.done',
    'response.completed',
  ]);
  // Every event of an item names the item and the index it was added with.
  const added = new Map<number, string>();
  for (const e of events as unknown as {
    type: string;
    output_index?: number;
    item_id?: string;
    item?: { id: string };
  }[]) {
    if (e.type === 'response.output_item.added') added.set(e.output_index!, e.item!.id);
    else if (e.type === 'response.output_item.done') assert.equal(e.item!.id, added.get(e.output_index!));
    else if (e.item_id !== undefined) assert.equal(e.item_id, added.get(e.output_index!), e.type);
  }
  assert.equal(added.size, 2);
  const text = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta);
  assert.equal(text.join(''), 'Checking.', 'no tool-call markup leaks into the text');
  const done = events.at(-1) as unknown as { response: OpenAI.Responses.Response };
  assert.equal(done.response.status, 'completed');
  const call = done.response.output[1]!;
  assert.ok(call.type === 'function_call');
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
  // The call's item is added once its name is known; its arguments stream as they are written.
  const opened = events.find((e) => e.type === 'response.output_item.added' && e.sequence_number > 5) as unknown as {
    item: Record<string, unknown>;
  };
  assert.deepEqual(
    { ...opened.item, id: 0, call_id: 0 },
    {
      id: 0,
      type: 'function_call',
      status: 'in_progress',
      arguments: '',
      call_id: 0,
      name: 'get_weather',
    },
  );
  const args = events.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => e.delta);
  assert.ok(args.length > 5, `${args.length} argument deltas`);
  const argsDone = events.find((e) => e.type === 'response.function_call_arguments.done') as unknown as {
    arguments: string;
  };
  const whole = await openai.responses.create({ model: 'm', input: 'Weather in Paris?', tools: [weather] });
  const wholeCall = whole.output[1]!;
  assert.ok(wholeCall.type === 'function_call');
  assert.deepEqual([args.join(''), argsDone.arguments, call.arguments], Array(3).fill(wholeCall.arguments));
  // The SDK's own accumulation of the events agrees.
  const helper = openai.responses.stream({ model: 'm', input: 'Weather in Paris?', tools: [weather] });
  const final = await helper.finalResponse();
  assert.equal(final.output_text, 'Checking.');
  assert.deepEqual(
    final.output.map((o) => o.type),
    ['message', 'function_call'],
  );
});

test('a thinking model: its reasoning as a reasoning item before the message, streamed as reasoning_text', async () => {
  const { openai, url } = await serve('<think>ponder</think>Answer.', thinking);
  const r = await openai.responses.create({ model: 'm', input: 'Why?' });
  assert.deepEqual(
    r.output.map((o) => o.type),
    ['reasoning', 'message'],
  );
  const reasoning = r.output[0]!;
  assert.ok(reasoning.type === 'reasoning');
  assert.deepEqual(reasoning.content, [{ type: 'reasoning_text', text: 'ponder' }]);
  assert.equal(r.output_text, 'Answer.');
  const raw = await fetch(`${url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', input: 'Why?', stream: true }),
  });
  const sse = await raw.text();
  assert.match(sse, /^event: response\.created\ndata: \{/);
  assert.ok(!sse.includes('[DONE]'), 'the Responses stream has no [DONE]');
  const deltas = [...sse.matchAll(/event: response\.reasoning_text\.delta\ndata: (.*)\n/g)].map(
    (m) => JSON.parse(m[1]!).delta,
  );
  assert.equal(deltas.join(''), 'ponder');
  const counted = await openai.responses.create({ model: 'm', input: 'Why?' });
  // The tokens pushed while the reasoning block is open: the opening tag and the reasoning, and as much of the closing
  // tag as the parser holds back before it is sure.
  const reasoningTokens = counted.usage!.output_tokens_details.reasoning_tokens;
  assert.ok(reasoningTokens >= '<think>ponder'.length && reasoningTokens <= '<think>ponder</think>'.length);
});

test('chat_template_kwargs reach the template (thinking off: the prompt closes the block, the answer is all text)', async () => {
  const { openai, prompt } = await serve('Answer.', thinking);
  const r = await openai.responses.create({
    model: 'm',
    input: 'Why?',
    // @ts-expect-error vLLM's extra field
    chat_template_kwargs: { enable_thinking: false },
  });
  assert.match(prompt(), /<\|assistant\|><think>\n\n<\/think>\n\n$/);
  assert.deepEqual(
    r.output.map((o) => o.type),
    ['message'],
  );
  assert.equal(r.usage!.output_tokens_details.reasoning_tokens, 0);
});

test('input items: a conversation with an earlier call and its output renders as chat completions renders it', async () => {
  const { openai, prompt, url } = await serve('It is 21 degrees.', hermes);
  await openai.responses.create({
    model: 'm',
    tools: [weather],
    input: [
      { role: 'developer', content: 'Answer in one line.' },
      { role: 'user', content: [{ type: 'input_text', text: 'Weather in Paris?' }] },
      { type: 'reasoning', id: 'rs_1', summary: [], content: [{ type: 'reasoning_text', text: 'look it up' }] },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
      { type: 'function_call_output', call_id: 'call_1', output: '{"temp": 21}' },
    ],
  });
  const viaResponses = prompt();
  // The output under its function's name (Hermes writes it), the call on the assistant turn.
  assert.match(
    viaResponses,
    /<tool_response>\n\{"name": "get_weather", "content": "\{\\"temp\\": 21\}"\}\n<\/tool_response>/,
  );
  assert.match(
    viaResponses,
    /<\|im_start\|>assistant\n<tool_call>\n\{ "arguments": \{"city": "Paris"\}, "name": "get_weather"\}/,
  );
  const { parameters, description, name } = weather;
  const chat = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    body: { model: 'm', ...weatherConversation({ id: 'call_1', name, description, parameters }, '') },
  });
  assert.equal(chat.status, 200);
  assert.equal(viaResponses, prompt());
});

test('stored responses: previous_response_id goes on from one, GET and input_items read it, store false and DELETE', async () => {
  const { openai, prompt } = await serve('Hello there.', fakeTemplate);
  const first = await openai.responses.create({ model: 'm', instructions: 'Be brief.', input: 'Hi' });
  const stored = (r: object) => (r as { store?: boolean }).store;
  assert.equal(stored(first), true, "the API's default");
  const second = await openai.responses.create({ model: 'm', previous_response_id: first.id, input: 'Again' });
  // The earlier turn and its answer before the new input; the earlier instructions are not carried over.
  assert.equal(prompt(), '<|user|>Hi<|assistant|>Hello there.<|user|>Again<|assistant|>');
  assert.equal(second.previous_response_id, first.id);
  assert.deepEqual(await openai.responses.retrieve(second.id), second);
  // A response's own input items, not those its previous_response_id brought.
  const listed = async (id: string, query: { order?: 'asc' | 'desc'; limit?: number } = {}) =>
    (await openai.responses.inputItems.list(id, query)).data.map((i) =>
      i.type === 'message' ? `${i.role}: ${JSON.stringify(i.content)}` : i.type,
    );
  assert.deepEqual(await listed(second.id), ['user: "Again"']);
  const third = await openai.responses.create({
    model: 'm',
    previous_response_id: second.id,
    input: [
      { role: 'user', content: 'One' },
      { role: 'user', content: 'Two' },
    ],
  });
  assert.deepEqual(await listed(third.id), ['user: "Two"', 'user: "One"'], 'newest first by default');
  assert.deepEqual(await listed(third.id, { order: 'asc', limit: 1 }), ['user: "One"']);
  const items = await openai.responses.inputItems.list(third.id);
  assert.ok(items.data.every((i) => typeof i.id === 'string'));

  // A streamed response is kept too; one with store false is not.
  const stream = await openai.responses.create({ model: 'm', input: 'Streamed', stream: true });
  let streamedId = '';
  for await (const e of stream) if (e.type === 'response.completed') streamedId = e.response.id;
  assert.equal((await openai.responses.retrieve(streamedId)).output_text, 'Hello there.');
  const unkept = await openai.responses.create({ model: 'm', input: 'Hi', store: false });
  assert.equal(stored(unkept), false);
  await assert.rejects(openai.responses.retrieve(unkept.id), (e: Error) => e instanceof OpenAI.NotFoundError);

  // Deleting the first response leaves the second's conversation whole.
  await openai.responses.delete(first.id);
  await assert.rejects(openai.responses.retrieve(first.id), (e: Error) => e instanceof OpenAI.NotFoundError);
  await assert.rejects(openai.responses.delete(first.id), (e: Error) => e instanceof OpenAI.NotFoundError);
  await openai.responses.create({ model: 'm', previous_response_id: third.id, input: 'Last' });
  assert.equal(
    prompt(),
    '<|user|>Hi<|assistant|>Hello there.<|user|>Again<|assistant|>Hello there.<|user|>One<|user|>Two' +
      '<|assistant|>Hello there.<|user|>Last<|assistant|>',
  );
});

test("logprobs: include message.output_text.logprobs and top_logprobs give the answer's tokens, streamed and whole", async () => {
  const { openai, engine } = await serve('<think>ponder</think>Answer.', thinking);
  const plain = await openai.responses.create({ model: 'm', input: 'Why?' });
  assert.equal(engine().lastRequest!.params?.logprobs, null, 'not asked: none computed');
  assert.deepEqual((plain.output[1] as { content: { logprobs: unknown[] }[] }).content[0]!.logprobs, []);
  const r = await openai.responses.create({
    model: 'm',
    input: 'Why?',
    include: ['message.output_text.logprobs'],
    top_logprobs: 2,
  });
  assert.equal(engine().lastRequest!.params?.logprobs, 2);
  const message = r.output[1]!;
  assert.ok(message.type === 'message' && message.content[0]!.type === 'output_text');
  const logprobs = message.content[0]!.logprobs!;
  // The answer's tokens only (one a character here), not the reasoning's.
  assert.deepEqual(
    logprobs.map((l) => l.token),
    [...'Answer.'],
  );
  assert.deepEqual(logprobs[0], {
    token: 'A',
    logprob: -0.25,
    bytes: [65],
    top_logprobs: [
      { token: 'a', logprob: -0.25, bytes: [97] },
      { token: 'b', logprob: -1.25, bytes: [98] },
    ],
  });
  const stream = await openai.responses.create({ model: 'm', input: 'Why?', top_logprobs: 0, stream: true });
  const streamed: string[] = [];
  let done: unknown[] = [];
  for await (const e of stream) {
    if (e.type === 'response.output_text.delta') streamed.push(...e.logprobs.map((l) => l.token));
    if (e.type === 'response.output_text.done') done = e.logprobs;
  }
  assert.deepEqual(streamed, [...'Answer.'], 'top_logprobs alone asks for them too');
  assert.equal(done.length, 7);
});

test('logprobs of tokens the parser holds back go with the text they turn out to be', async () => {
  const asked = { include: ['message.output_text.logprobs' as const], tools: [weather] };
  const tokensOf = (r: OpenAI.Responses.Response) =>
    r.output.flatMap((item) =>
      item.type === 'message' ? item.content.flatMap((p) => (p.type === 'output_text' ? p.logprobs! : [])) : [],
    );
  // '<' may open <tool_call>: held until '1' shows it does not, then given out with it.
  const tag = await serve('a <1', hermes);
  const r = await tag.openai.responses.create({ model: 'm', input: 'Hi', ...asked });
  assert.equal(r.output_text, 'a <1');
  assert.deepEqual(
    tokensOf(r).map((l) => l.token),
    [...'a <1'],
  );
  // A call that does not parse is content after all, every token of it; one that does gives the text none of its own.
  const broken = await serve('<tool_call>oops', hermes);
  const b = await broken.openai.responses.create({ model: 'm', input: 'Hi', ...asked });
  assert.deepEqual(
    tokensOf(b).map((l) => l.token),
    [...'<tool_call>oops'],
  );
  const call = await serve(CALL, hermes);
  const c = await call.openai.responses.create({ model: 'm', input: 'Hi', ...asked });
  assert.ok(c.output.some((item) => item.type === 'function_call'));
  assert.deepEqual(
    tokensOf(c).map((l) => l.token),
    [...'Checking.'],
  );
});

test('text.format json_schema: the output is held to the schema', async () => {
  const { openai, engine } = await serve('{"a": 1}', fakeTemplate);
  const schema = { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] };
  await openai.responses.create({
    model: 'm',
    input: 'JSON please',
    text: { format: { type: 'json_schema', name: 'thing', schema, strict: true } },
  });
  assert.deepEqual(engine().lastRequest!.grammar, { type: 'json_schema', schema });
});

test('refusals, one 400 each in OpenAI shape, naming the field', async () => {
  const { url } = await serve('x', hermes);
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ previous_response_id: 'resp_1' }, /^Previous response with id 'resp_1' not found\.$/],
    [{ tools: [{ type: 'web_search' }] }, /^tools\[0\]: type "web_search" is not supported \(function tools only\)$/],
    [
      { input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] },
      /^input\[0\]\.content\[0\]: type "input_image" is not supported \(text parts only\)$/,
    ],
    [{ input: [{ type: 'item_reference', id: 'x' }] }, /^input\[0\]: item type "item_reference" is not supported/],
    [
      { tools: [weather], tool_choice: { type: 'function', name: 'nope' } },
      /tool_choice names "nope", which is not among the tools/,
    ],
    [{ tools: [{ ...weather, name: 'bad name' }] }, /^tools\[0\]\.name: a tool name is 1-128 letters/],
    [
      { tools: [weather], tool_choice: { type: 'function' } },
      /^tool_choice\.name: a function tool_choice names its function$/,
    ],
    [{ input: [] }, /^input: /],
    [{ input: [{ type: 'reasoning', summary: [] }] }, /^input: no message to answer/],
    [{ input: [{ type: 'reasoning', summary: {} }] }, /^input\[0\]\.summary: expected a list$/],
    [{ input: [{ type: 'reasoning', content: 5 }] }, /^input\[0\]\.content: expected a list$/],
    [
      { text: { format: { type: 'json_object' } }, tools: [weather], tool_choice: 'required' },
      /does not combine with structured output/,
    ],
  ];
  for (const [extra, pattern] of cases) {
    const r = await request(`${url}/v1/responses`, { method: 'POST', body: { model: 'm', input: 'hi', ...extra } });
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.match((r.json.error as { message: string }).message, pattern, JSON.stringify(extra));
  }
});

test('a streamed call cut at max_output_tokens: its item is incomplete, its arguments as far as they got', async () => {
  const { openai } = await serve(CALL, hermes);
  const ask = { model: 'm', input: 'Weather in Paris?', tools: [weather], max_output_tokens: 70 };
  const stream = await openai.responses.create({ ...ask, stream: true });
  const events: { type: string; delta?: string; item?: OpenAI.Responses.ResponseOutputItem }[] = [];
  for await (const e of stream) events.push(e as never);
  const args = events.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => e.delta);
  assert.equal(args.join(''), '{"city":"Pa');
  const item = events.filter((e) => e.type === 'response.output_item.done').at(-1)!.item!;
  assert.ok(item.type === 'function_call');
  assert.deepEqual([item.status, item.arguments], ['incomplete', '{"city":"Pa']);
  assert.equal(events.at(-1)!.type, 'response.incomplete');
});

test('streamed and cut at max_output_tokens: the stream ends with response.incomplete', async () => {
  const { openai } = await serve('Hello there.', fakeTemplate);
  const stream = await openai.responses.create({ model: 'm', input: 'Hi', max_output_tokens: 3, stream: true });
  const types: string[] = [];
  let last: { response?: OpenAI.Responses.Response } = {};
  for await (const e of stream) {
    types.push(e.type);
    last = e as never;
  }
  assert.equal(types.at(-1), 'response.incomplete');
  assert.equal(last.response!.status, 'incomplete');
  assert.equal(last.response!.output_text, 'Hel');
});

test('a generation aborted by the server (a forced shutdown): status failed with its error, the text so far', async () => {
  const { openai, engine, asked } = await serve('x'.repeat(400), fakeTemplate);
  const pending = openai.responses.create({ model: 'm', input: 'Hi' });
  await asked();
  engine().abort(engine().lastRequest!.id!);
  const r = await pending;
  assert.equal(r.status, 'failed');
  assert.deepEqual(r.error, { code: 'server_error', message: 'the generation was aborted' });
  assert.ok(r.output_text.length < 400);
});

test("multi-turn: the last response's output sent back as input, with the call's output, renders the call", async () => {
  const { openai, prompt } = await serve(CALL, hermes);
  const first = await openai.responses.create({ model: 'm', input: 'Weather in Paris?', tools: [weather] });
  const call = first.output.find((o) => o.type === 'function_call')!;
  assert.ok(call.type === 'function_call');
  const refused = { type: 'message', role: 'assistant', content: [{ type: 'refusal', refusal: 'No.' }] } as const;
  const second = await openai.responses.create({
    model: 'm',
    tools: [weather],
    input: [
      { role: 'user', content: 'Weather in Paris?' },
      ...(first.output as OpenAI.Responses.ResponseInputItem[]),
      { type: 'function_call_output', call_id: call.call_id, output: '{"temp": 21}' },
      refused as never,
      { role: 'user', content: 'Thanks' },
    ],
  });
  assert.equal(second.status, 'completed');
  const p = prompt();
  // The message and the call it came with are one assistant turn (Hermes writes only the call of such a turn).
  assert.match(p, /<\|im_start\|>assistant\n<tool_call>\n\{ "arguments": \{"city": "Paris"\}, "name": "get_weather"\}/);
  assert.equal(p.split('<|im_start|>assistant').length - 1, 3, 'the call turn, the refusal, the generation prompt');
  assert.match(p, /"content": "\{\\"temp\\": 21\}"/);
  assert.match(p, /No\.<\|im_end\|>/);
});

test("vLLM's sampling extras reach the engine", async () => {
  const { openai, engine } = await serve('ok', fakeTemplate);
  // @ts-expect-error vLLM's extra fields
  await openai.responses.create({ model: 'm', input: 'Hi', top_k: 5, seed: 7, min_p: 0.1 });
  const params = engine().lastRequest!.params!;
  assert.deepEqual([params.topK, params.seed, params.minP], [5, 7, 0.1]);
});
