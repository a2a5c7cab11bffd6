import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { jsonValidator, schemaViolation } from '../helpers/json-validator.ts';
import { type ServedModel, startServed } from './served.ts';

let server: ServedModel;
let client: OpenAI;
let ollama: Ollama;
before(async () => {
  server = await startServed();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  ollama = new Ollama({ host: server.url });
});
after(() => server.close());

const messages = [{ role: 'user' as const, content: 'Describe a city in JSON.' }];
const schema = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 8 }, rank: { type: 'integer', minimum: 1, maximum: 9 } },
  required: ['city', 'rank'],
  additionalProperties: false,
};
const ajv = jsonValidator();
/** vLLM's extra body fields, which the openai package passes through untyped. */
const extra = (fields: Record<string, unknown>) => fields as object;

test('OpenAI response_format json_schema (strict), not streamed and streamed: output validates', async () => {
  for (const seed of [1, 2, 3]) {
    const response_format = { type: 'json_schema' as const, json_schema: { name: 'city', schema, strict: true } };
    const r = await client.chat.completions.create({
      model: server.model,
      messages,
      response_format,
      temperature: 1,
      seed,
      max_tokens: 120,
    });
    const choice = r.choices[0]!;
    if (choice.finish_reason === 'stop') assert.equal(schemaViolation(ajv, schema, choice.message.content!), null);
    else assert.equal(choice.finish_reason, 'length');
    const stream = await client.chat.completions.create({
      model: server.model,
      messages,
      response_format,
      temperature: 1,
      seed,
      max_tokens: 120,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, choice.message.content);
  }
});

test('OpenAI json_object, vLLM guided_choice / guided_regex and structured_outputs', async () => {
  const obj = await client.chat.completions.create({
    model: server.model,
    messages,
    response_format: { type: 'json_object' },
    temperature: 1,
    seed: 5,
    max_tokens: 200,
  });
  if (obj.choices[0]!.finish_reason === 'stop')
    assert.equal(typeof JSON.parse(obj.choices[0]!.message.content!), 'object');
  const choice = await client.chat.completions.create({
    model: server.model,
    messages,
    temperature: 1,
    seed: 6,
    ...extra({ guided_choice: ['sunny', 'rainy'] }),
  });
  assert.ok(['sunny', 'rainy'].includes(choice.choices[0]!.message.content!));
  const re = await client.completions.create({
    model: server.model,
    prompt: 'Code:',
    temperature: 1,
    seed: 7,
    max_tokens: 20,
    ...extra({ guided_regex: '[A-Z]{2}[0-9]{3}' }),
  });
  assert.match(re.choices[0]!.text, /^[A-Z]{2}[0-9]{3}$/);
  const so = await client.completions.create({
    model: server.model,
    prompt: 'Pick:',
    temperature: 1,
    seed: 8,
    max_tokens: 20,
    ...extra({ structured_outputs: { choice: ['left', 'right'] } }),
  });
  assert.ok(['left', 'right'].includes(so.choices[0]!.text));
});

test('OpenAI: two kinds of structured output at once, an invalid regex or grammar: 400 naming the problem', async () => {
  const bad = async (fields: Record<string, unknown>, message: RegExp) =>
    assert.rejects(
      client.chat.completions.create({ model: server.model, messages, ...extra(fields) }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && message.test(err.message),
    );
  await bad({ guided_regex: 'a', guided_choice: ['b'] }, /only one kind of structured output/);
  await bad({ guided_regex: '(a' }, /invalid regular expression: .*parenthesis/);
  await bad({ guided_grammar: 'root ::= nothing' }, /invalid grammar: .*"nothing" is not defined/);
  await bad({ guided_json: '{not json' }, /guided_json: not valid JSON/);
  await bad(
    { response_format: { type: 'json_schema', json_schema: { schema } } },
    /^400 response_format\.json_schema\.name: /,
  );
});

test('Ollama format: a JSON schema (generate) and "json" (chat, streamed)', async () => {
  for (const seed of [1, 2]) {
    const r = await ollama.generate({
      model: server.model,
      prompt: 'A city:',
      format: schema,
      options: { temperature: 1, seed, num_predict: 120 },
    });
    if (r.done_reason === 'stop') assert.equal(schemaViolation(ajv, schema, r.response ?? ''), null);
  }
  const stream = await ollama.chat({
    model: server.model,
    messages,
    format: 'json',
    stream: true,
    options: { temperature: 1, seed: 3, num_predict: 200 },
  });
  let text = '';
  let reason = '';
  for await (const part of stream) {
    text += part.message.content;
    if (part.done) reason = part.done_reason;
  }
  if (reason === 'stop') assert.equal(typeof JSON.parse(text), 'object');
});
