import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type ChatMessage, loadChatTemplate } from '../../src/loader/chat-template.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { modelFixture } from '../helpers/fixtures.ts';

const MODELS = ['stories260K', 'tiny-llama', 'tiny-qwen2', 'tiny-qwen3', 'tiny-mistral', 'tiny-gpt2'];

interface Golden {
  chat?: { messages: ChatMessage[]; rendered: string; input_ids: number[] };
}

for (const name of MODELS) {
  const fx = modelFixture(name);
  test(`${name}: chat template renders and encodes as transformers does`, { skip: fx.skip }, () => {
    const golden: Golden = JSON.parse(readFileSync(join(fx.path, 'golden.json'), 'utf8'));
    const template = loadChatTemplate(fx.path);
    if (!golden.chat) {
      assert.equal(template, null);
      return;
    }
    assert.ok(template);
    const rendered = template.render(golden.chat.messages, { addGenerationPrompt: true });
    assert.equal(rendered, golden.chat.rendered);
    assert.deepEqual(loadTokenizer(fx.path).encode(rendered, { addSpecialTokens: false }), golden.chat.input_ids);
  });
}

/** A folder with tiny-llama's tokenizer and the given tokenizer_config.json (no chat_template.jinja). */
function folderWithConfig(config: Record<string, unknown>): string {
  const fx = modelFixture('tiny-llama');
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-chat-'));
  if (!fx.skip) copyFileSync(join(fx.path, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

test('chat_template inside tokenizer_config.json: a string, or the "default" of a named list', () => {
  const base = { bos_token: { content: '<s>' }, eos_token: '</s>' };
  const tpl = "{{ bos_token }}{% for m in messages %}{{ m['role'] }}={{ m['content'] }}{{ eos_token }}{% endfor %}";
  const msgs = [{ role: 'user', content: 'hi' }];
  const plain = loadChatTemplate(folderWithConfig({ ...base, chat_template: tpl }));
  assert.equal(plain?.render(msgs), '<s>user=hi</s>');
  const listed = loadChatTemplate(
    folderWithConfig({
      ...base,
      chat_template: [
        { name: 'tool_use', template: 'TOOLS' },
        { name: 'default', template: tpl },
      ],
    }),
  );
  assert.equal(listed?.render(msgs), '<s>user=hi</s>');
  assert.equal(loadChatTemplate(folderWithConfig(base)), null);
  // A vision-language checkpoint's processor template (chat_template.json), where the tokenizer's config has none.
  const processor = folderWithConfig(base);
  writeFileSync(join(processor, 'chat_template.json'), JSON.stringify({ chat_template: tpl }));
  assert.equal(loadChatTemplate(processor)?.render(msgs), '<s>user=hi</s>');
  writeFileSync(join(processor, 'chat_template.json'), '{"chat_template": 3}');
  assert.throws(() => loadChatTemplate(processor), /chat_template\.json: "chat_template" is a number/);
});

test('add_generation_prompt, trim_blocks/lstrip_blocks and raise_exception behave as in transformers', () => {
  const tpl = [
    '{% for m in messages %}',
    "  {% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}",
    "<{{ m['role'] }}>{{ m['content'] }}",
    '{% endfor %}',
    '{% if add_generation_prompt %}<assistant>{% endif %}',
    '',
  ].join('\n');
  const t = loadChatTemplate(folderWithConfig({ chat_template: tpl }));
  assert.ok(t);
  const msgs = [{ role: 'user', content: 'a' }];
  assert.equal(t.render(msgs), '<user>a\n');
  assert.equal(t.render(msgs, { addGenerationPrompt: true }), '<user>a\n<assistant>');
  assert.throws(
    () => t.render([{ role: 'system', content: 'x' }]),
    /tokenizer_config\.json: chat template failed: System role not supported/,
  );
});

test('malformed chat templates are one-line errors naming the file', () => {
  assert.throws(
    () => loadChatTemplate(folderWithConfig({ chat_template: [{ name: 'rag', template: 'x' }] })),
    /tokenizer_config\.json: "chat_template" lists templates \[rag\] but none named "default"/,
  );
  assert.throws(
    () => loadChatTemplate(folderWithConfig({ chat_template: 42 })),
    /"chat_template" is a number, expected a string or a list/,
  );
  assert.throws(
    () => loadChatTemplate(folderWithConfig({ chat_template: '{% for m in messages %}' })),
    /tokenizer_config\.json: chat template does not parse/,
  );
});
