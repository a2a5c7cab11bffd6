import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { eventually, post } from './harness.ts';
import { type ServedModel, startServed } from './served.ts';

let server: ServedModel;
let client: OpenAI;
before(async () => {
  server = await startServed();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(() => server.close());

const prompts = ['Once upon a time', 'The cat'];
// Sampled, not greedy, so each choice differs; a seeded sequence draws the same wherever it is batched.
const sampling = { max_tokens: 6, n: 2, temperature: 1, seed: 7 };

async function alone(prompt: string | number[]) {
  return client.completions.create({ model: server.model, prompt, ...sampling });
}

test('a list of prompts gives n choices per prompt, index = prompt * n + sample, usage summed', async () => {
  const singles = await Promise.all(prompts.map(alone));
  const r = await client.completions.create({ model: server.model, prompt: prompts, ...sampling });
  assert.deepEqual(
    r.choices.map((c) => c.index),
    [0, 1, 2, 3],
  );
  for (let i = 0; i < prompts.length; i++) {
    for (let j = 0; j < 2; j++) {
      assert.equal(r.choices[i * 2 + j].text, singles[i].choices[j].text, `prompt ${i}, sample ${j}`);
      assert.equal(r.choices[i * 2 + j].finish_reason, singles[i].choices[j].finish_reason);
    }
  }
  assert.notEqual(r.choices[0].text, r.choices[2].text);
  const promptTokens = singles.reduce((s, x) => s + x.usage!.prompt_tokens, 0);
  assert.deepEqual(r.usage, { prompt_tokens: promptTokens, completion_tokens: 24, total_tokens: promptTokens + 24 });
});

test('lists of token-id lists are prompts too; echo repeats each choice its own prompt', async () => {
  const tokenizer = server.ctx.registry.resident()[0].model.tokenizer;
  const ids = prompts.map((p) => tokenizer.encode(p, { addSpecialTokens: true }));
  const byText = await client.completions.create({ model: server.model, prompt: prompts, ...sampling });
  const byIds = await client.completions.create({ model: server.model, prompt: ids, ...sampling });
  assert.deepEqual(
    byIds.choices.map((c) => c.text),
    byText.choices.map((c) => c.text),
  );
  const echoed = await client.completions.create({ model: server.model, prompt: prompts, ...sampling, echo: true });
  for (const c of echoed.choices) {
    const prompt = prompts[Math.floor(c.index / 2)];
    assert.equal(c.text, prompt + byText.choices[c.index].text);
  }
});

test('streamed batches carry the same choices, by index, with one usage chunk', async () => {
  const whole = await client.completions.create({ model: server.model, prompt: prompts, ...sampling });
  const stream = await client.completions.create({
    model: server.model,
    prompt: prompts,
    ...sampling,
    stream: true,
    stream_options: { include_usage: true },
  });
  const texts = ['', '', '', ''];
  const finish: (string | null)[] = [null, null, null, null];
  let usage: OpenAI.CompletionUsage | null | undefined = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      texts[c.index] += c.text;
      finish[c.index] = c.finish_reason ?? finish[c.index];
    }
  }
  assert.deepEqual(
    texts,
    whole.choices.map((c) => c.text),
  );
  assert.deepEqual(
    finish,
    whole.choices.map((c) => c.finish_reason),
  );
  assert.deepEqual(usage, whole.usage);
});

test('one prompt of a batch too long: a 400, and nothing of the batch keeps running', async () => {
  const long = 'word '.repeat(1500);
  const r = await post(`${server.url}/v1/completions`, { model: server.model, prompt: ['hi', long], max_tokens: 4 });
  assert.equal(r.status, 400);
  assert.match((r.json.error as { message: string }).message, /the prompt is \d+ tokens/);
  const s = server.stats();
  assert.equal(s.running + s.waiting, 0);
  assert.equal(s.freeBlocks, s.totalBlocks);
  const empty = await post(`${server.url}/v1/completions`, { model: server.model, prompt: [] });
  assert.equal(empty.status, 400);
});

test('one prompt of a batch refused by the engine: a 400, and the prompts it had started are aborted', async () => {
  const small = await startServed({}, undefined, { kvCacheMemory: 4 * 12 * 1024, blockSize: 16 });
  try {
    const body = { model: small.model, prompt: ['hi', 'hello '.repeat(20)], max_tokens: 8 };
    const r = await post(`${small.url}/v1/completions`, body);
    assert.equal(r.status, 400);
    assert.match((r.json.error as { message: string }).message, /needs \d+ KV blocks, but the whole KV cache has 4/);
    await eventually(() => small.stats().running + small.stats().waiting === 0, 2000, 'the batch to end');
    const s = small.stats();
    assert.equal(s.freeBlocks, s.totalBlocks);
    assert.ok(s.generationTokens < 8, `"hi" ran on for ${s.generationTokens} tokens`);
  } finally {
    await small.close();
  }
});
