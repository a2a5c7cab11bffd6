import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeConversation } from '../../src/cli/chat/conversation.ts';
import type { TextTokenizer } from '../../src/loader/tokenizer.ts';
import { goPromptTemplate } from '../../src/store/model-prompt.ts';

test('a prompt template that fails as it runs is an error naming the model', () => {
  const model = {
    chatTemplate: goPromptTemplate('{{ index .Messages 5 }}'),
    tokenizer: { encode: () => [1] } as unknown as TextTokenizer,
    modelName: 'broken:latest',
  };
  assert.throws(
    () => encodeConversation(model, [{ role: 'user', content: 'Hi' }]),
    /^UserError: broken:latest: its prompt template failed: template:1: index: .*out of range/,
  );
});
