import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { OllamaTemplate, type TemplateMessage } from '../../src/gotemplate/ollama.ts';
import { projectRoot } from '../helpers/fixtures.ts';

const dir = join(projectRoot, 'test/fixtures/ollama-templates');
const read = (name: string) => readFileSync(join(dir, `${name}.gotmpl`), 'utf8');

// The conversations of Ollama's template_test.go, named by their roles.
const user: TemplateMessage = { role: 'user', content: 'Hello, how are you?' };
const assistant: TemplateMessage = { role: 'assistant', content: "I'm doing great. How can I help you today?" };
const user2: TemplateMessage = { role: 'user', content: "I'd like to show off how chat templating works!" };
const system: TemplateMessage = { role: 'system', content: 'You are a helpful assistant.' };
const conversations: Record<string, TemplateMessage[]> = {
  user: [user],
  'user-assistant-user': [user, assistant, user2],
  'system-user-assistant-user': [system, user, assistant, user2],
};

const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, Record<string, string>>;
for (const [name, cases] of Object.entries(expected)) {
  test(`Ollama's ${name} template renders as Ollama's own test data`, () => {
    const template = new OllamaTemplate(read(name));
    for (const [conversation, want] of Object.entries(cases)) {
      assert.equal(template.render(conversations[conversation]!), want, `${name} / ${conversation}`);
    }
  });
}

test('mistral v0.3 puts the system prompt in the last user turn (slice, len, and, $.System)', () => {
  const template = new OllamaTemplate(read('mistral-v0.3'));
  assert.equal(
    template.render(conversations['system-user-assistant-user']!),
    "[INST] Hello, how are you?[/INST] I'm doing great. How can I help you today?</s>" +
      "[INST] You are a helpful assistant.\nI'd like to show off how chat templating works![/INST]",
  );
  assert.equal(template.render([user]), '[INST] Hello, how are you?[/INST]');
});

test('a template without .Messages runs once per exchange and stops at the last .Response', () => {
  const template = new OllamaTemplate(read('phi-3-legacy'));
  assert.equal(
    template.render(conversations['system-user-assistant-user']!),
    '<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello, how are you?<|end|>\n' +
      "<|assistant|>\nI'm doing great. How can I help you today?<|end|>" +
      "<|user|>\nI'd like to show off how chat templating works!<|end|>\n<|assistant|>\n",
  );
  // A trailing assistant message is continued, not closed.
  assert.equal(
    template.render([user, { role: 'assistant', content: 'Fine, and' }]),
    '<|user|>\nHello, how are you?<|end|>\n<|assistant|>\nFine, and',
  );
});

test('a template naming neither .Messages nor .Response gets .Response appended (as Ollama does)', () => {
  const template = new OllamaTemplate('Q: {{ .Prompt }}\nA: ');
  assert.equal(
    template.render([user, assistant, user2]),
    `Q: ${user.content}\nA: ${assistant.content}Q: ${user2.content}\nA: `,
  );
});

test('consecutive messages of one role are merged, system messages joined', () => {
  const template = new OllamaTemplate('{{ .System }}|{{ range .Messages }}{{ .Role }}={{ .Content }};{{ end }}');
  assert.equal(
    template.render([
      { role: 'system', content: 's1' },
      { role: 'system', content: 's2' },
      { role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
    ]),
    's1\n\ns2|system=s1\n\ns2;user=a\n\nb;',
  );
});
