import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { post } from './harness.ts';
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
