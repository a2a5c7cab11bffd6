import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ChatTemplate } from '../../src/loader/chat-template.ts';
import { toMessages } from '../../src/server/openai/chat-message.ts';
import { chatRequest } from '../../src/server/openai/schemas.ts';
import { projectRoot } from '../helpers/fixtures.ts';

const dir = join(projectRoot, 'test', 'fixtures', 'tool-templates');
const conversation = JSON.parse(readFileSync(join(dir, 'conversation.json'), 'utf8'));
const expected: Record<string, string> = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));

// Real families' tool templates (Qwen2.5/Hermes, Llama 3.1, Mistral) render an OpenAI request's tools, tool calls and
// tool results as transformers renders them (expected.json comes from Python's jinja2).
for (const name of Object.keys(expected)) {
  test(`${name}: tools, a tool call and its result render as the authors' template does`, () => {
    const body = chatRequest.parse({ model: 'm', messages: conversation.messages, tools: conversation.tools });
    const template = new ChatTemplate(readFileSync(join(dir, name), 'utf8'), name, {
      bos_token: '<s>',
      eos_token: '</s>',
    });
    const out = template.render(toMessages(body.messages), {
      addGenerationPrompt: true,
      tools: body.tools,
      kwargs: { date_string: '26 Jul 2024' },
    });
    assert.equal(out, expected[name]);
  });
}

test("a message's text parts are joined by newlines, developer is system (as vLLM reads them)", () => {
  const body = chatRequest.parse({
    model: 'm',
    messages: [
      { role: 'developer', content: [{ type: 'text', text: 'Be brief.' }] },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Hi' },
          { type: 'text', text: 'there' },
        ],
      },
    ],
  });
  assert.deepEqual(toMessages(body.messages), [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi\nthere' },
  ]);
});
