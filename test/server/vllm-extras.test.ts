import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fakeTemplate } from './fake-engine.ts';
import { post } from './harness.ts';
import { closeScriptedServers, serveScript } from './scripted-model.ts';
import { MODEL, type ServedModel, startServed } from './served.ts';

let served: ServedModel;
before(async () => {
  served = await startServed();
});
after(() => served.close());

const usage = (r: { json: Record<string, unknown> }) => r.json.usage as { prompt_tokens: number };
const message = (r: { json: Record<string, unknown> }) => (r.json.error as { message: string }).message;

test("truncate_prompt_tokens keeps the prompt's last tokens, on completions and chat, as vLLM does", async () => {
  const long = 'once upon a time there was a tiny model '.repeat(200);
  const refused = await post(`${served.url}/v1/completions`, { model: MODEL, prompt: long, max_tokens: 2 });
  assert.equal(refused.status, 400, 'too long for the context without it');
  const cut = await post(`${served.url}/v1/completions`, {
    model: MODEL,
    prompt: long,
    max_tokens: 2,
    truncate_prompt_tokens: 6,
    echo: true,
  });
  assert.equal(cut.status, 200, cut.text);
  assert.equal(usage(cut).prompt_tokens, 6);
  const text = (cut.json.choices as { text: string }[])[0]!.text;
  // The echo is the prompt's kept end, then the answer.
  let echoed = 0;
  for (let j = 1; j <= text.length; j++) if (long.endsWith(text.slice(0, j))) echoed = j;
  assert.ok(echoed >= 6 && echoed < 60, `echoed ${echoed} characters of the prompt's end`);
  const ids = [1, 312, 45, 907, 18, 77, 501];
  const byIds = await post(`${served.url}/v1/completions`, {
    model: MODEL,
    prompt: ids,
    max_tokens: 1,
    truncate_prompt_tokens: 3,
  });
  assert.equal(usage(byIds).prompt_tokens, 3);
  const whole = await post(`${served.url}/v1/completions`, {
    model: MODEL,
    prompt: ids,
    max_tokens: 1,
    truncate_prompt_tokens: -1,
  });
  assert.equal(usage(whole).prompt_tokens, ids.length, '-1 keeps a prompt that fits');
  const chat = await post(`${served.url}/v1/chat/completions`, {
    model: MODEL,
    messages: [{ role: 'user', content: long }],
    max_tokens: 2,
    truncate_prompt_tokens: 5,
  });
  assert.equal(chat.status, 200, chat.text);
  assert.equal(usage(chat).prompt_tokens, 5);
  const tooMany = await post(`${served.url}/v1/completions`, {
    model: MODEL,
    prompt: 'x',
    truncate_prompt_tokens: 1 << 20,
  });
  assert.equal(tooMany.status, 400);
  assert.match(message(tooMany), /^truncate_prompt_tokens 1048576: more than the model's context length \(\d+\)$/);
  const fim = await post(`${served.url}/v1/completions`, {
    model: MODEL,
    prompt: 'a',
    suffix: 'b',
    truncate_prompt_tokens: 2,
  });
  assert.match(message(fim), /^truncate_prompt_tokens cannot be combined with suffix/);
});

test('allowed_token_ids reaches the sampler from both routes; ids outside the vocabulary are refused', async () => {
  const tokenize = async (prompt: string) =>
    (await post(`${served.url}/tokenize`, { model: MODEL, prompt, add_special_tokens: false })).json.tokens as number[];
  // Tokens of ' the a': whatever this small vocabulary makes of it, the answer is spelt with its letters only.
  const allowed = [...new Set(await tokenize(' the a'))];
  const spelt = (tokens: string[]) => [...tokens.join('')].every((c) => ' thea'.includes(c));
  const body = {
    model: MODEL,
    prompt: 'Once upon',
    max_tokens: 8,
    temperature: 1,
    seed: 3,
    logprobs: 0,
    ignore_eos: true,
  };
  const within = await post(`${served.url}/v1/completions`, { ...body, allowed_token_ids: allowed });
  assert.equal(within.status, 200, within.text);
  const tokens = (within.json.choices as { logprobs: { tokens: string[] } }[])[0]!.logprobs.tokens;
  assert.ok(spelt(tokens), tokens.join('|'));
  const chat = await post(`${served.url}/v1/chat/completions`, {
    model: MODEL,
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 4,
    allowed_token_ids: allowed,
    logprobs: true,
    ignore_eos: true,
  });
  const chatTokens = (chat.json.choices as { logprobs: { content: { token: string }[] } }[])[0]!.logprobs.content;
  assert.ok(spelt(chatTokens.map((t) => t.token)), chatTokens.map((t) => t.token).join('|'));
  const outside = await post(`${served.url}/v1/completions`, { ...body, allowed_token_ids: [1 << 20] });
  assert.equal(outside.status, 400);
  assert.match(message(outside), /^allowed_token_ids: 1048576 is outside the vocabulary/);
});

test('bad_words reach the engine as token sequences: each word as written and after a space', async () => {
  const { url, engine } = await serveScript('ok', fakeTemplate);
  await post(`${url}/v1/completions`, { model: 'm', prompt: 'x', bad_words: ['ab', ' ab', 'c'] });
  // The fake tokenizer's ids are bytes + 3.
  const ids = (s: string) => [...Buffer.from(s)].map((b) => b + 3);
  assert.deepEqual(engine().lastRequest!.params!.badWords, [ids('ab'), ids(' ab'), ids('c'), ids(' c')]);
  await closeScriptedServers();
});
