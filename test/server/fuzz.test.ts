import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mulberry32 } from '../../src/util/random.ts';
import { eventually, post, request } from './harness.ts';
import { MODEL, type ServedModel, startServed } from './served.ts';

let server: ServedModel;
before(async () => {
  server = await startServed({ bodyLimitBytes: 64 * 1024 });
});
after(() => server.close());

/** mulberry32: a small seeded generator, so a failing case can be replayed by its index. */
function rng(seed: number) {
  const next = mulberry32(seed);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  return { next, int, pick };
}

type Kind = 'number' | 'int' | 'string' | 'boolean' | 'array' | 'object';
interface Endpoint {
  path: string;
  base: Record<string, unknown>;
  fields: Record<string, Kind>;
  /** The field whose absence is an error (default `model`; vLLM's tokenizer routes default theirs). */
  required?: string;
}

const endpoints: Endpoint[] = [
  {
    path: '/v1/chat/completions',
    base: { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 },
    fields: {
      model: 'string',
      messages: 'array',
      max_tokens: 'int',
      temperature: 'number',
      n: 'int',
      stream: 'boolean',
      stop: 'array',
      logprobs: 'boolean',
      top_logprobs: 'int',
      seed: 'int',
      top_p: 'number',
      logit_bias: 'object',
    },
  },
  {
    path: '/v1/completions',
    base: { model: MODEL, prompt: 'hi', max_tokens: 2 },
    fields: {
      model: 'string',
      prompt: 'string',
      max_tokens: 'int',
      temperature: 'number',
      n: 'int',
      stream: 'boolean',
      logprobs: 'int',
      echo: 'boolean',
      best_of: 'int',
      min_p: 'number',
    },
  },
  {
    path: '/api/generate',
    base: { model: MODEL, prompt: 'hi', stream: false, options: { num_predict: 2 } },
    fields: {
      model: 'string',
      prompt: 'string',
      stream: 'boolean',
      options: 'object',
      system: 'string',
      raw: 'boolean',
      context: 'array',
      keep_alive: 'string',
    },
  },
  {
    path: '/api/chat',
    base: { model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: false, options: { num_predict: 2 } },
    fields: { model: 'string', messages: 'array', stream: 'boolean', options: 'object' },
  },
  { path: '/api/show', base: { model: MODEL }, fields: { model: 'string', verbose: 'boolean' } },
  // Served by a text model, a well-formed body is refused too (a 400 naming the task).
  {
    path: '/v1/embeddings',
    base: { model: MODEL, input: ['hi'] },
    fields: {
      model: 'string',
      input: 'array',
      encoding_format: 'string',
      dimensions: 'int',
      truncate_prompt_tokens: 'int',
      add_special_tokens: 'boolean',
      user: 'string',
    },
  },
  {
    path: '/api/embed',
    base: { model: MODEL, input: 'hi' },
    fields: { model: 'string', input: 'array', truncate: 'boolean', dimensions: 'int', options: 'object' },
  },
  {
    path: '/v1/rerank',
    base: { model: MODEL, query: 'q', documents: ['d'] },
    fields: { model: 'string', query: 'string', documents: 'array', top_n: 'int', return_documents: 'boolean' },
  },
  {
    path: '/v2/rerank',
    base: { model: MODEL, query: 'q', documents: ['d'] },
    fields: { query: 'string', documents: 'array', truncate_prompt_tokens: 'int' },
  },
  {
    path: '/v1/responses',
    base: { model: MODEL, input: 'hi', max_output_tokens: 2 },
    fields: {
      model: 'string',
      input: 'array',
      instructions: 'string',
      max_output_tokens: 'int',
      temperature: 'number',
      stream: 'boolean',
      tools: 'array',
      tool_choice: 'object',
      text: 'object',
    },
  },
  {
    path: '/v1/messages',
    base: { model: MODEL, max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] },
    fields: {
      model: 'string',
      messages: 'array',
      max_tokens: 'int',
      temperature: 'number',
      stream: 'boolean',
      tools: 'array',
      tool_choice: 'object',
      stop_sequences: 'array',
      system: 'object',
      thinking: 'object',
      output_config: 'array',
    },
  },
  { path: '/score', base: { model: MODEL, text_1: 'a', text_2: ['b'] }, fields: { text_1: 'array', text_2: 'array' } },
  {
    path: '/tokenize',
    base: { model: MODEL, prompt: 'hi' },
    fields: { prompt: 'string', messages: 'array', add_special_tokens: 'boolean' },
    required: 'prompt',
  },
  { path: '/detokenize', base: { model: MODEL, tokens: [1, 2] }, fields: { tokens: 'array' }, required: 'tokens' },
];

/** A value of the wrong JSON type for `kind`, or a value of the right type that is out of range. */
function hostileValue(r: ReturnType<typeof rng>, kind: Kind, field: string): unknown {
  const wrongTypes: Record<Kind, unknown[]> = {
    number: ['1', true, [], {}, 'NaN'],
    int: [1.5, '2', false, [1], {}, -1, -1e300, 2 ** 60],
    string: [42, true, ['x'], { $ne: 1 }],
    boolean: [1, 'true', 'yes', [], {}],
    array: ['x', 7, { 0: 'x' }, [null], [42], [{ role: 'root', content: 1 }]],
    object: [
      'x',
      3,
      [1, 2],
      { num_predict: 'many' },
      { __proto__: { polluted: true }, mirostat: 1 },
      { 'not a token': 1 },
    ],
  };
  if (field === 'model')
    return r.pick(['../../../etc/passwd', '\u0000', 'x'.repeat(5000), 'C:\\Windows', '%2e%2e/', 42, null]);
  if (field === 'keep_alive') return r.pick(['forever-ish', [], {}, true]);
  if (field === 'tokens') return r.pick(['x', 7, [null], [-1], [1.5], [1e9]]);
  if (field === 'prompt') return r.pick([42, true, { p: 1 }, [[1], ['a']], [-1], ['a', 2]]);
  if (kind === 'number' || kind === 'int') return r.pick([...wrongTypes[kind], -1e308, 1e308, -3]);
  return r.pick(wrongTypes[kind]);
}

function deepNest(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

/** One hostile body for an endpoint: bytes that are never a valid request. */
function hostileBody(r: ReturnType<typeof rng>, e: Endpoint): string | Buffer {
  const valid = JSON.stringify(e.base);
  switch (r.int(9)) {
    case 0: // truncated JSON
      return valid.slice(0, 1 + r.int(valid.length - 2));
    case 1: // random bytes, usually invalid UTF-8
      return Buffer.from(Array.from({ length: 1 + r.int(64) }, () => r.int(256)));
    case 2: {
      // invalid UTF-8 inside an otherwise valid body
      const s = valid.replace('hi', 'h\u0001i');
      const i = s.indexOf('\u0001');
      return Buffer.concat([
        Buffer.from(s.slice(0, i)),
        Buffer.from([r.pick([0xc3, 0xff, 0xed, 0xf8])]),
        Buffer.from(s.slice(i + 1)),
      ]);
    }
    case 3: // not an object
      return r.pick(['null', '42', '"str"', '[]', 'true', deepNest(5000), '{"a":'.repeat(2000)]);
    case 4: {
      // a required field missing
      const body: Record<string, unknown> = { ...e.base };
      delete body[e.required ?? 'model'];
      return JSON.stringify(body);
    }
    case 5: // an unknown field
      return JSON.stringify({ ...e.base, [r.pick(['frobnicate', 'constructor', '__proto__x', 'x'.repeat(300)])]: 1 });
    case 6: // a lone surrogate
      return valid.replace(MODEL, 'tiny\\udc00llama');
    case 7: // oversize
      return JSON.stringify({ ...e.base, padding: 'x'.repeat(70 * 1024) });
    default: {
      // one field of the wrong type or out of range
      const [field, kind] = r.pick(Object.entries(e.fields));
      return JSON.stringify({ ...e.base, [field]: hostileValue(r, kind, field) });
    }
  }
}

test('1,000 malformed or hostile bodies: each a 4xx JSON error in its API shape, the server unharmed', async () => {
  // Load the model first, so leaks would show in the engine's counters.
  assert.equal(
    (
      await post(`${server.url}/api/generate`, {
        model: MODEL,
        prompt: 'x',
        stream: false,
        options: { num_predict: 1 },
      })
    ).status,
    200,
  );
  const r = rng(20261126);
  const cases = Array.from({ length: 1000 }, (_, i) => {
    const e = endpoints[r.int(endpoints.length)];
    return { i, path: e.path, body: hostileBody(r, e) };
  });
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++];
      const res = await post(`${server.url}${c.path}`, c.body);
      // vLLM's routes outside /v1 answer in OpenAI's shape too; Anthropic's (/v1/messages) also nest the message.
      const openai = /^\/v[12]\//.test(c.path) || ['/score', '/tokenize', '/detokenize'].includes(c.path);
      const anthropic = c.path.startsWith('/v1/messages');
      const nested = res.json.error as { message?: unknown; type?: unknown } | undefined;
      const shapeOk = anthropic
        ? res.json.type === 'error' && typeof nested?.type === 'string' && typeof nested?.message === 'string'
        : openai
          ? typeof nested?.message === 'string'
          : typeof res.json.error === 'string';
      if (res.status < 400 || res.status >= 500 || !shapeOk) {
        failures.push(
          `case ${c.i} ${c.path} ${String(c.body).slice(0, 120)} -> ${res.status} ${res.text.slice(0, 200)}`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  assert.deepEqual(failures, []);
  assert.equal((await request(`${server.url}/health`)).status, 200);
  await eventually(() => server.ctx.gate.size === 0 && server.stats().running === 0, 5000, 'no request left');
  const s = server.stats();
  assert.equal(s.freeBlocks, s.totalBlocks);
});
