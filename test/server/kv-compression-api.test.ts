import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { post, request } from './harness.ts';
import { type ServedModel, startServed } from './served.ts';

let server: ServedModel;
let plain: ServedModel;
before(async () => {
  server = await startServed({}, undefined, { kvCompression: { method: 'snapkv' } });
  plain = await startServed();
});
after(async () => {
  await server.close();
  await plain.close();
});

const story = 'Once upon a time there was a little fox who lived by the river and liked to watch the boats. '.repeat(3);

test('kv_budget on /v1/completions and in Ollama options compresses the prompt; /metrics counts the blocks saved', async () => {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const base = { model: server.model, prompt: story, max_tokens: 6, temperature: 0 };
  const full = await client.completions.create(base);
  assert.equal(server.stats().kvBlocksSaved, 0, 'no budget: no compression');
  const prompt = full.usage!.prompt_tokens;
  assert.ok(prompt > 48, `a prompt of ${prompt} tokens spans several blocks`);
  const cut = await client.completions.create({ ...base, kv_budget: 20 } as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(cut.choices[0]!.finish_reason, 'length');
  assert.equal(cut.usage!.completion_tokens, 6);
  const saved = server.stats().kvBlocksSaved;
  assert.equal(saved, Math.ceil(prompt / 16) - 2);

  const ollama = new Ollama({ host: server.url });
  const r = await ollama.generate({
    model: server.model,
    prompt: story,
    options: { num_predict: 4, temperature: 0, kv_budget: 0.5 } as Record<string, number>,
  });
  assert.equal(r.eval_count, 4);
  assert.ok(server.stats().kvBlocksSaved > saved, 'the Ollama request saved blocks too');
  const metrics = (await request(`${server.url}/metrics`)).text;
  assert.match(
    metrics,
    new RegExp(
      `^pagoda_kv_compression_blocks_saved_total\\{model_name="${server.model}"\\} ${server.stats().kvBlocksSaved}$`,
      'm',
    ),
  );
});

test('a kv_budget that is no budget, or sent to a model without KV compression, is a 400 naming kv_budget', async () => {
  const bad = await post(`${server.url}/v1/completions`, { model: server.model, prompt: story, kv_budget: 2.5 });
  assert.equal(bad.status, 400);
  const e = bad.json.error as { message: string; param: string };
  assert.match(e.message, /kv_budget: 2.5 is not a KV budget/);
  const off = await post(`${plain.url}/api/generate`, {
    model: plain.model,
    prompt: story,
    stream: false,
    options: { kv_budget: 16 },
  });
  assert.equal(off.status, 400);
  assert.match(off.json.error as string, /kv_budget: this model runs without KV compression/);
});
