import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ChatTemplate } from '../../src/loader/chat-template.ts';
import { fakeTemplate } from './fake-engine.ts';
import { request } from './harness.ts';
import { closeScriptedServers, serveScript } from './scripted-model.ts';

after(closeScriptedServers);

test("chat completions, vLLM's prefill: continue_final_message leaves the last assistant message open", async () => {
  const { url, prompt } = await serveScript('42)', fakeTemplate);
  const chat = (body: object) =>
    request(`${url}/v1/chat/completions`, { method: 'POST', body: { model: 'm', max_tokens: 8, ...body } });
  const messages = [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'The answer is (' },
  ];
  const r = await chat({ messages, add_generation_prompt: false, continue_final_message: true });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(prompt(), '<|user|>Hi<|assistant|>The answer is (');
  await chat({ messages, add_generation_prompt: false });
  assert.equal(prompt(), '<|user|>Hi<|assistant|>The answer is (', 'no new turn opened');
  await chat({ messages });
  assert.equal(prompt(), '<|user|>Hi<|assistant|>The answer is (<|assistant|>', 'a new turn by default');
  const both = await chat({ messages, add_generation_prompt: true, continue_final_message: true });
  assert.equal(both.status, 400);
  const userLast = await chat({ messages: messages.slice(0, 1), continue_final_message: true });
  assert.equal(userLast.status, 400);
  assert.match(
    (userLast.json.error as { message: string }).message,
    /^the last message, to go on from, must be the assistant's with text the template writes$/,
  );
});

test("Ollama's /api/chat continues a conversation that ends in the assistant's words", async () => {
  const { url, prompt } = await serveScript('42)', fakeTemplate);
  const chat = (messages: object[]) =>
    request(`${url}/api/chat`, { method: 'POST', body: { model: 'm', messages, stream: false } });
  const r = await chat([
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'The answer is (' },
  ]);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(prompt(), '<|user|>Hi<|assistant|>The answer is (');
  await chat([{ role: 'user', content: 'Hi' }]);
  assert.equal(prompt(), '<|user|>Hi<|assistant|>', 'a user message opens a new turn');
});

/** A template that trims each message and closes it with a tag ending in ">", as Llama 3's and ChatML's do. */
const trimming = new ChatTemplate(
  '{% for m in messages %}<|{{ m.role }}|>{{ m.content | trim }}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}',
  'trimming',
  {},
);

test('the prefill is cut where the message ends, whatever the template does to it or writes after it', async () => {
  const { url, prompt } = await serveScript('x', trimming);
  const chat = (content: string) =>
    request(`${url}/v1/chat/completions`, {
      method: 'POST',
      body: {
        model: 'm',
        max_tokens: 1,
        add_generation_prompt: false,
        continue_final_message: true,
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content },
        ],
      },
    });
  assert.equal((await chat('The answer is ')).status, 200);
  assert.equal(prompt(), '<|user|>Hi<|end|><|assistant|>The answer is ');
  // A one-character prefill that the closing tag also holds: the cut is at the message, not in the tag.
  assert.equal((await chat('>')).status, 200);
  assert.equal(prompt(), '<|user|>Hi<|end|><|assistant|>>');
  // Ollama's /api/chat: an empty last assistant message is nothing to go on from, and a new turn opens.
  await request(`${url}/api/chat`, {
    method: 'POST',
    body: {
      model: 'm',
      stream: false,
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: '' },
      ],
    },
  });
  assert.equal(prompt(), '<|user|>Hi<|end|><|assistant|>');
});

test("vLLM's --response-role: the role a new turn's answer names; without a new turn, the last message's", async () => {
  const { url } = await serveScript('Hi.', fakeTemplate, { config: { responseRole: 'model' } });
  const chat = (body: object) =>
    request(`${url}/v1/chat/completions`, { method: 'POST', body: { model: 'm', max_tokens: 8, ...body } });
  const roleOf = (r: { json: Record<string, unknown> }) =>
    (r.json.choices as { message: { role: string } }[])[0]!.message.role;
  const user = [{ role: 'user', content: 'Hi' }];
  assert.equal(roleOf(await chat({ messages: user })), 'model');
  assert.equal(roleOf(await chat({ messages: user, add_generation_prompt: false })), 'user');
  const streamed = await chat({ messages: user, stream: true });
  const first = streamed.text.split('\n').find((l) => l.startsWith('data: {'))!;
  assert.equal(JSON.parse(first.slice('data: '.length)).choices[0].delta.role, 'model');
});
