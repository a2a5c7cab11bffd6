import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { post } from './harness.ts';
import { closeScriptedServers, hermesTemplate, serveScript } from './scripted-model.ts';

let url = '';
before(async () => {
  url = (await serveScript('{}', hermesTemplate)).url;
});
after(closeScriptedServers);

/** A schema whose `m` must be a multiple of 3, which the grammar engine would not hold the output to. */
const schema = { type: 'object', properties: { m: { type: 'integer', description: 'M', multipleOf: 3 } } };
const said = '"multipleOf" at properties.m is not supported by the grammar engine';
const messages = [{ role: 'user', content: 'JSON please' }];
const tool = (parameters: unknown) => ({ type: 'function', function: { name: 'f', description: 'F', parameters } });

/** Each route's field holding a JSON schema that becomes a grammar, with the request putting `schema` there. */
const CASES: [route: string, field: string, body: Record<string, unknown>][] = [
  [
    '/v1/chat/completions',
    'response_format.json_schema.schema',
    { messages, response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } },
  ],
  ['/v1/chat/completions', 'guided_json', { messages, guided_json: JSON.stringify(schema) }],
  ['/v1/completions', 'structured_outputs.json', { prompt: 'x', structured_outputs: { json: schema } }],
  [
    '/v1/chat/completions',
    'tools[1].function.parameters',
    { messages, tools: [tool({}), tool(schema)], tool_choice: 'required' },
  ],
  [
    '/v1/responses',
    'tools[0].parameters',
    { input: 'x', tools: [{ type: 'function', name: 'f', parameters: schema }], tool_choice: 'required' },
  ],
  ['/v1/responses', 'text.format.schema', { input: 'x', text: { format: { type: 'json_schema', name: 'x', schema } } }],
  [
    '/v1/messages',
    'output_config.format.schema',
    { max_tokens: 8, messages, output_config: { format: { type: 'json_schema', schema } } },
  ],
  [
    '/v1/messages',
    'tools[0].input_schema',
    { max_tokens: 8, messages, tools: [{ name: 'f', input_schema: schema }], tool_choice: { type: 'any' } },
  ],
  ['/api/chat', 'format', { messages, format: schema, stream: false }],
];

test('a schema with a keyword the grammar engine ignores is a 400 naming the field and the keyword, on every route', async () => {
  for (const [route, field, body] of CASES) {
    const r = await post(`${url}${route}`, { model: 'm', ...body });
    assert.equal(r.status, 400, `${route} ${field}: ${r.text}`);
    const error = r.json.error as { message: string; param?: string } | string;
    const message = typeof error === 'string' ? error : error.message;
    assert.equal(message, `${field}: ${said}`);
    if (route.startsWith('/v1/chat')) assert.equal((error as { param: string }).param, field);
  }
});

test('tools under tool_choice auto are not held to a grammar, so their schemas are not checked', async () => {
  const r = await post(`${url}/v1/chat/completions`, { model: 'm', messages, tools: [tool(schema)] });
  assert.equal(r.status, 200, r.text);
});
